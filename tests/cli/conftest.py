"""Each CLI test runs the installed console scripts with its own HOME and embedded store."""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support.cli import STREAMED, Cli
from support.endpoints import moto_server as running_moto_server
from support.fake_openai import TEST_KEY, FakeOpenAI, Reply
from support.store import stop_store


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Cli]:
    home = tmp_path / "home"
    home.mkdir()
    store = tmp_path / "store.json"
    # the autouse `clean_env` fixture has already removed OB_*, OPENAI_* and AWS endpoint variables; TZ: new sessions
    # read time prompts in UTC whatever this machine's zone (/etc/localtime may name Etc/UTC or another)
    env = {**os.environ, "HOME": str(home), "OB_MEMORY_STORE": str(store), "TERM": "dumb", "NO_COLOR": "1",
           "TZ": "UTC"}
    env.pop("OPENAI_API_KEY", None)
    yield Cli(home=home, store=store, env=env)
    stop_store(store)  # the store's process the CLIs started


@pytest.fixture
def streaming_model(cli: Cli) -> Iterator[dict[str, str]]:
    """A real ChatOpenAI model (the fake OpenAI server) that streams `STREAMED` over about a second: the CLIs'
    environment in which `--model openai:gpt-test` uses it."""
    with FakeOpenAI() as model:
        model.always(Reply(STREAMED, chunk_size=6, chunk_interval=0.08))
        yield {**{name: value for name, value in cli.env.items() if "proxy" not in name.lower()},
               "OPENAI_BASE_URL": model.base_url, "OPENAI_API_KEY": TEST_KEY}


@pytest.fixture
def start_moto(tmp_path: Path) -> Iterator[Callable[[], str]]:
    """Starts moto servers for the test, each in a process of its own (so they share nothing), returning
    each one's URL; all are stopped after the test. Skips without moto[server] (flask, flask-cors)."""
    if importlib.util.find_spec("flask") is None or importlib.util.find_spec("flask_cors") is None:
        pytest.skip("moto[server] is not installed (flask, flask-cors)")
    numbers = itertools.count()
    with contextlib.ExitStack() as servers:
        yield lambda: servers.enter_context(running_moto_server(tmp_path / f"moto-{next(numbers)}.log"))


@pytest.fixture
def moto_server(start_moto: Callable[[], str]) -> str:
    """One moto server (`python -m moto.server`) on a loopback port: its URL."""
    return start_moto()
