"""The embedded store: the memory backend's tables kept in a JSON file between processes.

Only one moto mock may be active in a process at a time, so these tests open backends one after another
(or run the second one in a subprocess).
"""

from __future__ import annotations

import base64
import json
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, HumanMessage

from openbrain.aws.backend import Backend
from openbrain.aws.embedded_store import LOCK_WAIT_SECONDS, EmbeddedStore
from openbrain.core.errors import ConfigurationError, StoredDataError
from openbrain.core.settings import Settings
from openbrain.storage import memory_codec
from openbrain.storage.orm import MODELS, AgentConfig, ChatSession, Client, Lead

pytestmark = pytest.mark.integration

TABLES = [model.Meta.table_name for model in MODELS]


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "store.json"


@contextmanager
def opened(path: Path) -> Iterator[Backend]:
    backend = Backend(Settings(backend="memory", memory_store=path)).start()
    try:
        yield backend
    finally:
        backend.close()


def _conversation() -> bytes:
    return memory_codec.dumps([AIMessage("Hi! How can I help?"), HumanMessage("what is 6*7"), AIMessage("6*7 = 42")])


# --- persistence --------------------------------------------------------------------------------------------


def test_items_survive_close_and_a_new_backend(store: Path) -> None:
    # given: one item of every table, including a session's binary memory
    blob = _conversation()
    with opened(store):
        session = ChatSession("acme", profile_name="default", memory=blob, context={"page": "/pricing"})
        session.save()
        lead = Lead("acme", session_id=session.session_id, email="ada@example.com", medications=["aspirin"])
        lead.save()
        AgentConfig("acme", "sales", model="offline", icebreaker="Hello from sales").save()
        Client("acme", display_name="Acme Inc.").save()

    # when: a new backend starts on the same store
    with opened(store):
        # then
        loaded = ChatSession.get("acme", session.session_id)
        assert loaded.memory == blob
        assert [m.content for m in memory_codec.loads(loaded.memory)] == [
            "Hi! How can I help?", "what is 6*7", "6*7 = 42"]
        assert loaded.context == {"page": "/pricing"}
        assert loaded.expires_at is None
        stored_lead = Lead.get("acme", lead.lead_id)
        assert (stored_lead.email, stored_lead.medications) == ("ada@example.com", ["aspirin"])
        assert stored_lead.created_at == lead.created_at
        assert AgentConfig.get("acme", "sales").icebreaker == "Hello from sales"
        assert Client.get("acme").display_name == "Acme Inc."

        # and optimistic locking carries on from the stored version
        assert loaded.version == 1
        loaded.turn_count = 1
        loaded.save()
        assert ChatSession.get("acme", session.session_id).version == 2


def test_many_items_survive(store: Path) -> None:
    with opened(store):
        ids = set()
        for n in range(60):  # more than one BatchWriteItem (25 items) when loaded
            lead = Lead("acme", phone=f"+1 555 010 {n:04d}")
            lead.save()
            ids.add(lead.lead_id)

    with opened(store):
        assert {lead.lead_id for lead in Lead.get_all("acme")} == ids


def test_flush_writes_the_tables_without_closing(store: Path) -> None:
    blob = _conversation()
    with opened(store) as backend:
        session = ChatSession("acme", profile_name="default", memory=blob)
        session.save()

        backend.flush()

        document = json.loads(store.read_text())
        assert document["format"] == 1
        assert set(document["tables"]) == set(TABLES)
        [item] = document["tables"]["openbrain-chat-sessions"]
        assert item["session_id"] == {"S": session.session_id}
        assert base64.b64decode(item["memory"]["B"]) == blob


def test_the_store_file_is_private_to_its_owner(tmp_path: Path) -> None:
    # given: a store in a directory that does not exist yet
    store = tmp_path / "private" / "store.json"

    # when
    with opened(store):
        Lead("acme", email="ada@example.com").save()

    # then
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.parent.stat().st_mode) == 0o700
    assert sorted(p.name for p in store.parent.iterdir()) == ["store.json", "store.json.lock"]  # no temp files

    # and a rewrite keeps it private
    with opened(store):
        Lead("acme", email="grace@example.com").save()
    assert stat.S_IMODE(store.stat().st_mode) == 0o600


def test_without_a_store_nothing_is_written(tmp_path: Path) -> None:
    backend = Backend(Settings(backend="memory", memory_store=None)).start()
    try:
        Lead("acme", email="ada@example.com").save()
    finally:
        backend.close()

    assert list(tmp_path.iterdir()) == []
    assert not (Path.home() / ".openbrain").exists()


def test_a_missing_store_file_starts_empty(store: Path) -> None:
    with opened(store):
        assert Lead.get_all("acme") == []

    assert json.loads(store.read_text())["tables"]["openbrain-leads"] == []


# --- unreadable stores ----------------------------------------------------------------------------------------

UNREADABLE = {
    "empty file": "",
    "truncated": '{"format": 1, "tables": {"openbrain-leads": [',
    "not json": "hello",
    "a list": "[]",
    "no format": '{"tables": {}}',
    "a newer format": '{"format": 2, "tables": {}}',
    "tables not an object": '{"format": 1, "tables": []}',
    "an item without its keys": '{"format": 1, "tables": {"openbrain-leads": [{"email": {"S": "ada@example.com"}}]}}',
    "an item that is not an item": '{"format": 1, "tables": {"openbrain-leads": ["ada"]}}',
}


@pytest.mark.parametrize("content", UNREADABLE.values(), ids=UNREADABLE.keys())
def test_an_unreadable_store_is_a_stored_data_error(backend: Backend, store: Path, content: str) -> None:
    # given
    store.write_text(content)

    # when / then
    with pytest.raises(StoredDataError) as caught:
        EmbeddedStore(store).load(backend.client("dynamodb"), TABLES)
    assert caught.value.message.startswith(f"the embedded store {store} is not readable (")
    assert caught.value.message.endswith("); move it away to start afresh")
    assert store.read_text() == content


def test_a_backend_on_an_unreadable_store_fails_cleanly_and_keeps_the_file(store: Path) -> None:
    # given
    store.write_text("{not json")
    backend = Backend(Settings(backend="memory", memory_store=store))

    try:
        # when
        with pytest.raises(StoredDataError, match="is not readable"):
            backend.start()

        # then: the file is untouched and the store is not left locked by the failed start
        assert store.read_text() == "{not json"
        other = EmbeddedStore(store)
        other.acquire(wait=0.2)
        other.release()
    finally:
        backend.close()  # stops the in-process AWS if the failed start left it running


# --- one process at a time ---------------------------------------------------------------------------------------


def test_a_second_store_waits_for_the_lock_then_fails_clearly(store: Path) -> None:
    # given
    first = EmbeddedStore(store)
    first.acquire()
    second = EmbeddedStore(store)

    try:
        # when
        started = time.monotonic()
        with pytest.raises(ConfigurationError) as caught:
            second.acquire(wait=0.3)
        waited = time.monotonic() - started

        # then
        assert 0.3 <= waited < 5
        assert caught.value.message.startswith(f"the embedded store {store} is in use by another OpenBrain process")
        assert "OB_MEMORY_STORE" in caught.value.message

        # and once the first lets go, the second gets it
        first.release()
        second.acquire(wait=0.3)
    finally:
        first.release()
        second.release()


def test_a_waiting_store_gets_the_lock_as_soon_as_it_is_released(store: Path) -> None:
    import threading

    first, second = EmbeddedStore(store), EmbeddedStore(store)
    first.acquire()
    timer = threading.Timer(0.2, first.release)
    timer.start()
    try:
        started = time.monotonic()
        second.acquire(wait=5)
        assert time.monotonic() - started < 4
    finally:
        timer.join()
        second.release()


def test_a_closed_backend_releases_the_store(store: Path) -> None:
    with opened(store):
        pass

    other = EmbeddedStore(store)
    other.acquire(wait=0)
    other.release()


_SECOND_BACKEND = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    from openbrain.aws.backend import Backend
    from openbrain.core.errors import ConfigurationError
    from openbrain.core.settings import Settings

    try:
        Backend(Settings(backend="memory", memory_store=Path(sys.argv[1]))).start().close()
    except ConfigurationError as exc:
        print(exc.message)
        sys.exit(3)
    print("started")
    """
)


@pytest.mark.integration  # about 10 s: the second process waits out the lock
def test_a_second_backend_on_an_open_store_fails_with_a_configuration_error(store: Path) -> None:
    # given: a backend holding the store, with data not yet flushed
    with opened(store):
        Lead("acme", email="ada@example.com").save()

        # when: another process starts a backend on the same store
        started = time.monotonic()
        second = subprocess.run(
            [sys.executable, "-c", _SECOND_BACKEND, str(store)],
            capture_output=True, text=True, timeout=LOCK_WAIT_SECONDS + 60,
        )
        waited = time.monotonic() - started

    # then: it waited, then failed with a message saying why and what to do
    assert second.returncode == 3, second.stderr
    assert second.stdout.startswith(f"the embedded store {store} is in use by another OpenBrain process")
    assert waited >= LOCK_WAIT_SECONDS

    # and the first backend's data is intact
    with opened(store):
        assert [lead.email for lead in Lead.get_all("acme")] == ["ada@example.com"]
