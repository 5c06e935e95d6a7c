"""schemathesis against a real `ob-serve` over HTTP: every route of the OpenAPI document, every check
(no 5xx, documented statuses and bodies, schema-valid requests accepted, schema-violating ones refused), the
stateful phase included (links between operations), once with a server key and once with a widget key.

The default run is bounded: `FUZZ_EXAMPLES` per operation and phase, a fixed seed (the same cases every run), and
the fuzzing and stateful phases (the coverage phase's boundary values take the longest at any size: the long
run has them). `pytest -m fuzz` runs every phase, longer, with a fresh seed (docs/api.md "Fuzzing the API")."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support.cli import BIN, serving

pytestmark = pytest.mark.e2e

TESTS = Path(__file__).resolve().parents[1]
CONFIG = TESTS / "support" / "schemathesis.toml"
FUZZ_EXAMPLES = 15
LONG_EXAMPLES = 500
SEED = "20261203"


@dataclass(frozen=True)
class Server:
    url: str
    keys: dict[str, str]  # kind -> key


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("fuzz-home")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OB_", "OPENAI_", "AWS_"))}
    env.update(HOME=str(home), OB_MEMORY_STORE="none")
    api_key = f"ob.local.{secrets.token_hex(20)}"
    log = home / "ob-serve.log"
    with serving("ob-serve", "--port", "0", "--api-key", api_key, env=env, log=log) as url:
        widget_key = re.search(r"widget key: (\S+)", log.read_text())
        assert widget_key, log.read_text()
        yield Server(url, {"server": api_key, "widget": widget_key.group(1)})
    assert "Traceback" not in log.read_text()


def call(server: Server, kind: str, method: str, path: str, body: object = None) -> Any:
    """One request with `kind`'s key; its JSON body."""
    request = urllib.request.Request(f"{server.url}{path}", method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Content-Type": "application/json", "x-api-key": server.keys[kind]})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def scheduled(server: Server, kind: str) -> dict[str, str]:
    """A session with two scheduled messages, made with `kind`'s key through `POST /chat`: its id and the
    messages' ids. A random id only ever finds nothing (schemathesis warns "missing test data"), so the fuzz
    config binds these to the schedule routes' path parameters half the time: a list with something in it, a
    cancel that cancels."""
    ids: dict[str, str] = {}
    for number, command in enumerate(("dps u in 2 hours\nStretch!", "dps c every day at 8am\nA fact, please.")):
        continuing = {"sessionId": ids["session"]} if ids else {}
        reply = call(server, kind, "POST", "/chat", {"message": command, **continuing})
        [event] = reply["events"]
        ids["session"], ids[f"schedule{number}"] = reply["session_id"], event["object_id"]
    return ids


def fuzz_config(workdir: Path, ids: dict[str, str]) -> Path:
    """The fuzz config (CONFIG), with `ids` (`scheduled`) bound to the schedule routes' path parameters."""
    sessions, schedules = [ids["session"]], [ids["schedule0"], ids["schedule1"]]
    binding = ('parameters = { "path.session_id" = { dictionary = "sessions", probability = 0.5 }, '
               '"path.schedule_id" = { dictionary = "schedules", probability = 0.5 } }')
    config = workdir / "schemathesis.toml"
    config.write_text("\n".join([
        CONFIG.read_text(),
        "[dictionaries.sessions]", f"values = {json.dumps(sessions)}",
        "[dictionaries.schedules]", f"values = {json.dumps(schedules)}",
        "[[operations]]", 'include-path-regex = "^/sessions/[{]session_id[}]/schedules"', binding, "",
    ]))
    return config


def fuzz(server: Server, kind: str, examples: int, workdir: Path, seed: str | None, ids: dict[str, str],
         phases: str = "examples,coverage,fuzzing,stateful") -> str:
    """Run schemathesis (with `ids` for the schedule routes); its output. Fails the test (with the end of the
    output) on any failure."""
    env = {**os.environ, "PYTHONPATH": str(TESTS), "SCHEMATHESIS_HOOKS": "support.schemathesis_hooks",
           "NO_COLOR": "1"}
    config = fuzz_config(workdir, ids)
    command = [str(BIN / "schemathesis"), "--config-file", str(config), "run", f"{server.url}/openapi.json",
               "-H", f"x-api-key: {server.keys[kind]}", "--checks", "all", "--max-examples", str(examples),
               "--phases", phases, *(["--seed", seed] if seed else [])]
    done = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, timeout=1200, check=False)
    summary = done.stdout[-3000:]
    print(summary[summary.rfind("SUMMARY"):])  # pytest -rA shows it: the cases, phases and checks of the run
    assert done.returncode == 0, summary
    assert re.search(r"Stateful", done.stdout), summary  # the stateful phase ran
    return done.stdout


def generated(output: str) -> int:
    found = re.search(r"(\d+) generated", output)
    assert found, output[-3000:]
    return int(found.group(1))


@pytest.mark.parametrize("kind", ["server", "widget"])
def test_generated_requests_get_documented_answers_and_never_a_server_error(
        server: Server, kind: str, tmp_path: Path) -> None:
    ids = scheduled(server, kind)
    output = fuzz(server, kind, FUZZ_EXAMPLES, tmp_path, SEED, ids, phases="fuzzing,stateful")
    assert generated(output) >= 150, output[-3000:]
    # the schedule routes got past "not found": no warning of missing data names them, and a cancel cancelled
    warnings = output[output.find("WARNINGS"):output.rfind("SUMMARY")]
    assert "/schedules" not in warnings, warnings
    assert len(call(server, kind, "GET", f"/sessions/{ids['session']}/schedules")["schedules"]) < 2


@pytest.mark.fuzz
@pytest.mark.parametrize("kind", ["server", "widget"])
def test_a_long_fuzz_run_finds_nothing(server: Server, kind: str, tmp_path: Path) -> None:
    output = fuzz(server, kind, LONG_EXAMPLES, tmp_path, None, scheduled(server, kind))
    assert generated(output) >= 5000, output[-3000:]
