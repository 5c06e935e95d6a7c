"""Each CLI test runs the installed console scripts with its own HOME and embedded store."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.cli import Cli
from support.store import stop_store


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Cli]:
    home = tmp_path / "home"
    home.mkdir()
    store = tmp_path / "store.json"
    # the autouse `clean_env` fixture has already removed OB_*, OPENAI_* and AWS endpoint variables
    env = {**os.environ, "HOME": str(home), "OB_MEMORY_STORE": str(store), "TERM": "dumb", "NO_COLOR": "1"}
    env.pop("OPENAI_API_KEY", None)
    yield Cli(home=home, store=store, env=env)
    stop_store(store)  # the store's process the CLIs started

