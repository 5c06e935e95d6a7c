"""Scheduled messages on `ob-serve` (a real `LocalStack`, real HTTP and WebSocket clients): `dps c in 1 minute`
sent over the WebSocket, the scheduler's clock moved a minute on (never slept), and the bot's message arrives on
that WebSocket and is in `GET /sessions/{id}`; the schedules survive a restart and a time missed while ob-serve was
stopped is delivered once when it starts again."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.api import make_client
from support.backend import installed_backend
from websockets.sync.client import ClientConnection, connect

from openbrain.core.clock import utcnow
from openbrain.core.settings import Settings
from openbrain.local.serve import LocalStack
from openbrain.services.sessions import session_schedules
from openbrain.storage.orm import AgentConfig

pytestmark = pytest.mark.integration
ORIGIN = "https://www.acme.example"


class Clock:
    """The time ob-serve's scheduler reads: now, until the test moves it."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return utcnow() + self.offset


def _frames(ws: ClientConnection, until: str) -> list[dict[str, Any]]:
    frames = []
    while not frames or frames[-1]["type"] != until:
        frames.append(json.loads(ws.recv(timeout=20)))
    return frames


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("OB_MEMORY_STORE", str(tmp_path / "store.json"))
    yield tmp_path / "store.json"


def test_dps_c_in_one_minute_reaches_the_websocket_and_the_transcript(store: Path) -> None:
    clock = Clock()
    with installed_backend(Settings()) as backend:
        _, key = make_client("acme", [ORIGIN])
        AgentConfig("acme", "default", model="offline", tools=["calculator"]).save()
        stack = LocalStack(backend, port=0, schedule_interval=3600, clock=clock).start()
        try:
            with connect(stack.url.replace("http://", "ws://") + f"/ws?key={key}", origin=ORIGIN,  # type: ignore[arg-type]
                         open_timeout=10) as ws:
                ws.send(json.dumps({"action": "ack"}))
                assert json.loads(ws.recv(timeout=10)) == {"type": "ack"}
                # when: the person schedules a prompt to the chatbot
                ws.send(json.dumps({"action": "chat", "message": "dps c in 1 minute\n\nwhat is 6 * 7"}))
                answer = _frames(ws, "turn.finished")
                confirmation = next(f["text"] for f in answer if f["type"] == "message")
                session_id = answer[-1]["session_id"]
                assert confirmation.startswith("Scheduled a message to the assistant")
                # nothing is due yet
                assert stack.run_schedules() == []
                # then the clock passes the minute
                clock.offset = timedelta(minutes=1, seconds=1)
                [done] = stack.run_schedules()
                pushed = json.loads(ws.recv(timeout=10))
            assert pushed == {"type": "message", "text": done.text, "role": "assistant", "session_id": session_id,
                              "scheduled": True, "schedule_id": pushed["schedule_id"]}
            assert "42" in pushed["text"]
            session = httpx.get(f"{stack.url}/sessions/{session_id}", headers={"x-api-key": key}).json()
            assert [(m["role"], m["content"]) for m in session["messages"] if m["scheduled"]] == [
                ("user", "what is 6 * 7")]
            assert session["messages"][-1]["content"] == pushed["text"]
            assert session["schedules"] == []
        finally:
            stack.stop()


def test_schedules_survive_a_restart_and_a_missed_time_is_delivered_once_on_start(store: Path) -> None:
    # given: ob-serve takes a recurring schedule, then stops
    clock = Clock()
    with installed_backend(Settings()) as backend:
        _, key = make_client("acme", [ORIGIN])
        AgentConfig("acme", "default", model="offline").save()
        stack = LocalStack(backend, port=0, schedule_interval=3600, clock=clock).start()
        try:
            reply = httpx.post(f"{stack.url}/chat", headers={"x-api-key": key},
                               json={"message": "dps u every day at 9am\n\nGood morning!"}).json()
        finally:
            stack.stop()
    session_id = reply["session_id"]
    # when: it starts again two days and an hour after the first time was due
    with installed_backend(Settings()) as backend:
        [waiting] = session_schedules(backend.stores, "acme", session_id).schedules
        clock.offset = waiting.next_at - utcnow() + timedelta(days=2, hours=1)
        stack = LocalStack(backend, port=0, schedule_interval=3600, clock=clock).start()
        try:
            # then: the scheduler's first pass, at start, delivers it once (waited for, not slept for)
            deadline = time.monotonic() + 20
            session: dict[str, Any] = {}
            while time.monotonic() < deadline and not any(m["scheduled"] for m in session.get("messages", [])):
                session = httpx.get(f"{stack.url}/sessions/{session_id}", headers={"x-api-key": key}).json()
                time.sleep(0.05)
            assert [m["content"] for m in session["messages"] if m["scheduled"]] == ["Good morning!"]
            [moved] = session["schedules"]
            assert datetime.fromisoformat(moved["next_at"]) == waiting.next_at + timedelta(days=3)
            assert moved["deliveries"] == 1
            assert stack.run_schedules() == []
        finally:
            stack.stop()
