"""Several OpenBrain processes on one embedded store at once, and no answered turn lost to kill -9."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from support.backend import installed_backend
from support.cli import BIN, Cli, assert_one_line_error, serving, wait_for
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


def _workers(pid: int) -> list[int]:
    """The `--workers` processes of the ob-serve `pid` (Linux: the children its threads spawned)."""
    children: list[str] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError):  # a thread that has just ended
            children += (task / "children").read_text().split()
    return [int(child) for child in children
            if b"multiprocessing.spawn" in Path(f"/proc/{child}/cmdline").read_bytes()]


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads worker processes from Linux's /proc")
def test_ob_serve_with_two_workers_serves_from_both_and_replaces_one_killed(cli: Cli, tmp_path: Path) -> None:
    # given: ob-serve --workers 2 on the embedded store
    log = tmp_path / "ob-serve.log"
    with log.open("wb") as out:
        server = subprocess.Popen([str(BIN / "ob-serve"), "--port", "0", "--api-key", API_KEY, "--workers", "2"],
                                  stdout=out, stderr=subprocess.STDOUT, env=cli.env)
    try:
        url = wait_for(lambda: next((line.split("serving on ")[1].split()[0] for line in log.read_text().splitlines()
                                     if "serving on " in line), None), 90, "ob-serve to start")
        first = _workers(server.pid)
        assert len(first) == 2, log.read_text()
        before = {pid: _cpu_ticks(pid) for pid in first}

        # when: 40 turns, 8 at a time
        with ThreadPoolExecutor(8) as pool:
            replies = list(pool.map(lambda n: _post(url, {"message": f"hello {n}"}), range(40)))

        # then: all answered, and both processes did work
        assert [status for status, _ in replies] == [200] * 40
        assert all(_cpu_ticks(pid) > before[pid] for pid in first), (before, {p: _cpu_ticks(p) for p in first})

        # when: one worker is killed -9
        os.kill(first[0], signal.SIGKILL)

        # then: the other answers meanwhile, and a new worker takes the dead one's place
        assert _post(url, {"message": "still there?"})[0] == 200
        replaced = wait_for(lambda: (lambda now: now if len(now) == 2 and first[0] not in now else None)(
            _workers(server.pid)), 60, "a new worker")
        assert first[1] in replaced
        os.kill(first[1], signal.SIGKILL)  # the last of the first two: the new one serves alone
        assert _post(url, {"message": "and now?"})[0] == 200

        # when: ob-serve is stopped; then: it and its workers exit
        workers = _workers(server.pid)
        server.terminate()
        assert server.wait(timeout=60) == 0, log.read_text()
        wait_for(lambda: all(_gone(pid) for pid in workers), 30, "the workers to exit")
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads worker processes from Linux's /proc")
def test_workers_exit_when_ob_serve_is_killed_9(cli: Cli, tmp_path: Path) -> None:
    log = tmp_path / "ob-serve.log"
    with log.open("wb") as out:
        server = subprocess.Popen([str(BIN / "ob-serve"), "--port", "0", "--workers", "2"], stdout=out,
                                  stderr=subprocess.STDOUT, env=cli.env)
    try:
        url = wait_for(lambda: next((line.split("serving on ")[1].split()[0] for line in log.read_text().splitlines()
                                     if "serving on " in line), None), 90, "ob-serve to start")
        workers = _workers(server.pid)
        server.kill()
        server.wait()
        # then: the orphaned workers stop serving and exit (the port is not held by a server nobody can stop)
        wait_for(lambda: all(_gone(pid) for pid in workers), 30, "the workers to exit")
        with pytest.raises((urllib.error.URLError, ConnectionError)):
            urllib.request.urlopen(url + "/chat", timeout=5)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def test_workers_need_a_store_they_share(cli: Cli) -> None:
    result = cli.run("ob-serve", "--port", "0", "--workers", "2", OB_MEMORY_STORE="none")
    assert_one_line_error(result, "ob-serve", "--workers 2 needs a store the workers share")
