"""Several OpenBrain processes on one embedded store at once, and no answered turn lost to kill -9."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from support.backend import installed_backend
from support.cli import BIN, Cli, serving, wait_for
from support.store import stop_store, store_pid

from openbrain.core.settings import Settings
from openbrain.storage import memory_codec
from openbrain.storage.orm import ChatSession, Lead

pytestmark = pytest.mark.integration

API_KEY = "ob.local.shared-store-test-key-0123456789abcdef"


def _post(url: str, body: dict[str, Any]) -> tuple[int, Any]:
    request = urllib.request.Request(url + "/chat", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "x-api-key": API_KEY})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, json.loads(response.read())


def _said(client_id: str, session_id: str) -> list[str]:
    """What the user said in a stored session, in order."""
    messages = memory_codec.loads(ChatSession.get(client_id, session_id).memory)
    return [str(m.content) for m in messages if m.type == "human"]


def test_two_cli_processes_and_a_long_lived_backend_use_the_store_at_once(cli: Cli) -> None:
    # given: a backend open the whole time, as ob-chat, ob-tuner or ob-serve keep theirs
    with installed_backend(Settings(memory_store=cli.store)) as backend:
        Lead("acme", email="ada@example.com").save()

        # when: ob and ob-admin run meanwhile (neither waits for the other)
        turn = cli.run("ob", "--json", "my name is Grace Hopper")
        listed = cli.run("ob-admin", "client", "list", "--json")
        created = cli.run("ob-admin", "client", "create", "Acme Inc.", "--client-id", "acme")

        # then: each succeeded, and each sees the others' data
        assert turn.returncode == 0, turn.stderr
        assert listed.returncode == 0 and created.returncode == 0, (listed.stderr, created.stderr)
        session_id = json.loads(turn.stdout)["session_id"]
        assert _said("public", session_id) == ["my name is Grace Hopper"]
        assert backend.stores.clients.get("acme").display_name == "Acme Inc."
        shown = json.loads(cli.run("ob-admin", "client", "show", "acme", "--json").stdout)
        assert shown["client_id"] == "acme"
        again = cli.run("ob", "--json", "--session", session_id, "do you remember me?")
        assert "Grace Hopper" in json.loads(again.stdout)["message"]
        assert [lead.email for lead in Lead.get_all("acme")] == ["ada@example.com"]


def test_kill_9_of_ob_serve_during_a_stream_of_turns_loses_no_answered_turn(cli: Cli, tmp_path: Path) -> None:
    # given: ob-serve on the embedded store
    log = tmp_path / "ob-serve.log"
    with log.open("wb") as out:
        server = subprocess.Popen([str(BIN / "ob-serve"), "--port", "0", "--api-key", API_KEY], stdout=out,
                                  stderr=subprocess.STDOUT, env=cli.env)
    try:
        url = wait_for(lambda: next((line.split("serving on ")[1].split()[0] for line in log.read_text().splitlines()
                                     if "serving on " in line), None), 60, "ob-serve to start")

        # when: a stream of turns on one session, and ob-serve is killed -9 in the middle of it
        answered: list[str] = []
        session_id = None
        for n in range(200):
            if len(answered) == 10:
                threading.Timer(0.01, server.send_signal, (signal.SIGKILL,)).start()
            text = f"turn {n}"
            try:
                status, reply = _post(url, {"message": text, **({"sessionId": session_id} if session_id else {})})
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                break
            assert status == 200, reply
            session_id = reply["session_id"]
            answered.append(text)
        server.wait(timeout=30)
        assert server.returncode == -signal.SIGKILL
        assert session_id is not None and len(answered) >= 10
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()

    # then: a restarted ob-serve has every answered turn, and carries on the session
    with serving("ob-serve", "--port", "0", "--api-key", API_KEY, env=cli.env, log=tmp_path / "again.log") as again:
        with installed_backend(Settings(memory_store=cli.store)):
            said = _said("local", session_id)
        assert said[: len(answered)] == answered
        assert len(said) <= len(answered) + 1  # at most the turn in flight when it died, unanswered
        status, _ = _post(again, {"message": "still there?", "sessionId": session_id})
        assert status == 200


def test_kill_9_of_the_store_process_loses_no_answered_write(cli: Cli) -> None:
    # given: ob answered turns, each in its own process
    sessions = [json.loads(cli.run("ob", "--json", f"message {n}").stdout)["session_id"] for n in range(3)]
    pid = store_pid(cli.store)
    assert pid is not None

    # when: the store's process is killed -9 (the tables never compacted into the store file)
    stop_store(cli.store, signal.SIGKILL)

    # then: the next process starts a new one, which has every answered turn
    follow_up = cli.run("ob", "--json", "--session", sessions[0], "and again")
    assert follow_up.returncode == 0, follow_up.stderr
    assert store_pid(cli.store) != pid
    with installed_backend(Settings(memory_store=cli.store)):
        assert [_said("public", s) for s in sessions] == [["message 0", "and again"], ["message 1"], ["message 2"]]
