"""The embedded store: one process per store file that every OpenBrain process shares, every write on disk
before it is answered, the tables kept in the store file between runs."""

from __future__ import annotations

import base64
import json
import signal
import socket
import stat
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from support.cli import wait_for
from support.store import alive, stop_store, store_pid

from openbrain.aws.backend import Backend
from openbrain.aws.store_server import TOKEN_HEADER, Store
from openbrain.core.errors import StoredDataError
from openbrain.core.settings import Settings
from openbrain.storage import memory_codec
from openbrain.storage.orm import AgentConfig, ChatSession, Client, Lead

pytestmark = pytest.mark.integration


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "store.json"
    yield path
    stop_store(path)


@contextmanager
def opened(path: Path, **settings: object) -> Iterator[Backend]:
    backend = Backend(Settings(backend="memory", memory_store=path, **settings)).start()  # type: ignore[arg-type]
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
    stop_store(store)

    # when: a new backend starts on the same store (and a new store process on its file)
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
    stop_store(store)

    with opened(store):
        assert {lead.lead_id for lead in Lead.get_all("acme")} == ids


def test_a_write_is_on_disk_before_it_is_answered(store: Path) -> None:
    # given: a session saved, the backend still open
    blob = _conversation()
    with opened(store):
        session = ChatSession("acme", profile_name="default", memory=blob)
        session.save()

        # when: the store's process is killed at once
        stop_store(store, signal.SIGKILL)

    # then: a new store process has it, from the journal
    with opened(store):
        assert ChatSession.get("acme", session.session_id).memory == blob

    # and stopping writes it into the store file (format 2)
    stop_store(store)
    document = json.loads(store.read_text())
    assert document["format"] == 2
    [table] = [t for t in document["tables"] if t["name"] == "openbrain-chat-sessions"]
    [item] = table["items"]
    assert item["session_id"] == {"S": session.session_id}
    assert base64.b64decode(item["memory"]["B"]) == blob


def test_ssm_parameters_are_kept_from_the_journal_and_in_the_snapshot(store: Path) -> None:
    # given: parameters put, overwritten and deleted (the embedded backend's secret store), backend open
    with opened(store) as backend:
        ssm = backend.client("ssm")
        ssm.put_parameter(Name="/openbrain/dev/webhooks/acme", Value="whsec_one", Type="SecureString")
        ssm.put_parameter(Name="/openbrain/dev/webhooks/acme", Value="whsec_two", Type="SecureString", Overwrite=True)
        for name in ("/gone/a", "/gone/b", "/gone/c"):
            ssm.put_parameter(Name=name, Value="x", Type="String")
        ssm.delete_parameter(Name="/gone/a")
        ssm.delete_parameters(Names=["/gone/b", "/gone/c"])

        # when: the store's process is killed at once (nothing compacted)
        stop_store(store, signal.SIGKILL)

    # then: a new store process has them as they were, from the journal
    def parameters(backend: Backend) -> dict[str, str]:
        found = backend.client("ssm").get_parameters_by_path(Path="/", Recursive=True, WithDecryption=True)
        return {p["Name"]: p["Value"] for p in found["Parameters"]}

    with opened(store) as backend:
        assert parameters(backend) == {"/openbrain/dev/webhooks/acme": "whsec_two"}

    # and stopping writes them into the store file, from which the next one loads them
    stop_store(store)
    assert [p["put"]["Name"] for p in json.loads(store.read_text())["parameters"]] == ["/openbrain/dev/webhooks/acme"]
    with opened(store) as backend:
        assert parameters(backend) == {"/openbrain/dev/webhooks/acme": "whsec_two"}


def test_the_store_files_are_private_to_their_owner(tmp_path: Path) -> None:
    # given: a store in a directory that does not exist yet
    store = tmp_path / "private" / "store.json"

    try:
        # when
        with opened(store):
            Lead("acme", email="ada@example.com").save()
        stop_store(store)

        # then
        assert stat.S_IMODE(store.parent.stat().st_mode) == 0o700
        files = sorted(p.name for p in store.parent.iterdir())
        assert files == ["store.json", "store.json.clients", "store.json.journal", "store.json.lock",
                         "store.json.log"]  # no temp files, no state file once stopped
        assert all(stat.S_IMODE((store.parent / name).stat().st_mode) == 0o600 for name in files)

        # and a rewrite keeps it private
        with opened(store):
            Lead("acme", email="grace@example.com").save()
            assert stat.S_IMODE(store.with_name("store.json.server").stat().st_mode) == 0o600
        stop_store(store)
        assert stat.S_IMODE(store.stat().st_mode) == 0o600
    finally:
        stop_store(store)


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
    stop_store(store)

    [leads] = [t for t in json.loads(store.read_text())["tables"] if t["name"] == "openbrain-leads"]
    assert leads["items"] == []


# --- the format-1 file of earlier versions ----------------------------------------------------------------------


def test_a_format_1_store_is_read_and_rewritten_as_format_2(store: Path) -> None:
    # given: a store file as versions before issue 11 wrote it
    blob = _conversation()
    store.write_text(json.dumps({"format": 1, "tables": {
        "openbrain-chat-sessions": [{
            "client_id": {"S": "acme"}, "session_id": {"S": "s1"}, "profile_name": {"S": "default"},
            "memory": {"B": base64.b64encode(blob).decode()}, "version": {"N": "3"},
            "created_at": {"S": "2026-12-01T10:00:00.000000+0000"},
            "updated_at": {"S": "2026-12-01T10:00:00.000000+0000"},
        }],
        "openbrain-leads": [{"client_id": {"S": "acme"}, "lead_id": {"S": "l1"}, "email": {"S": "ada@example.com"},
                             "created_at": {"S": "2026-12-01T10:00:00.000000+0000"}}],
        "openbrain-clients": [],
    }}))

    # when
    with opened(store):
        # then
        session = ChatSession.get("acme", "s1")
        assert (session.memory, session.version) == (blob, 3)
        assert Lead.get("acme", "l1").email == "ada@example.com"

    stop_store(store)
    document = json.loads(store.read_text())
    assert document["format"] == 2 and "pending" not in document
    with opened(store):
        assert ChatSession.get("acme", "s1").memory == blob


# --- unreadable stores ----------------------------------------------------------------------------------------

UNREADABLE = {
    "empty file": "",
    "truncated": '{"format": 1, "tables": {"openbrain-leads": [',
    "not json": "hello",
    "a list": "[]",
    "no format": '{"tables": {}}',
    "a newer format": '{"format": 3, "tables": []}',
    "tables not an object": '{"format": 1, "tables": []}',
    "an item without its keys": '{"format": 1, "tables": {"openbrain-leads": [{"email": {"S": "ada@example.com"}}]}}',
    "an item that is not an item": '{"format": 1, "tables": {"openbrain-leads": ["ada"]}}',
    "a format-2 table without its definition": '{"format": 2, "journal": "j", "tables": [{"name": "t"}]}',
}


@pytest.mark.parametrize("content", UNREADABLE.values(), ids=UNREADABLE.keys())
def test_an_unreadable_store_is_a_stored_data_error(backend: Backend, store: Path, content: str) -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    # given
    store.write_text(content)
    reader = Store(store, DomainDispatcherApplication(create_backend_app))

    # when / then: loading it, or (format 1) filling the table its items wait for
    with pytest.raises(StoredDataError) as caught:
        reader.load()
        reader.applied_write("us-east-1", "CreateTable", {"TableName": "openbrain-leads"}, 200)
    assert caught.value.message.startswith(f"the embedded store {store} is not readable (")
    assert caught.value.message.endswith("); move it away to start afresh")
    assert store.read_text() == content


def test_a_backend_on_an_unreadable_store_fails_cleanly_and_keeps_the_file(store: Path) -> None:
    # given
    store.write_text("{not json")

    # when / then: one clear message, the file untouched
    with pytest.raises(StoredDataError, match=f"^the embedded store {store} is not readable"):
        Backend(Settings(backend="memory", memory_store=store)).start()
    assert store.read_text() == "{not json"

    # and nothing is left locked: once the file is moved away, the store starts
    store.unlink()
    with opened(store):
        assert Lead.get_all("acme") == []


# --- one store process, shared ----------------------------------------------------------------------------------

_OTHER_PROCESS = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    from openbrain.aws.backend import Backend
    from openbrain.core.settings import Settings
    from openbrain.storage.orm import Lead

    backend = Backend(Settings(backend="memory", memory_store=Path(sys.argv[1]))).start()
    print(",".join(sorted(lead.email for lead in Lead.get_all("acme"))))
    Lead("acme", email=sys.argv[2]).save()
    backend.close()
    """
)


def test_processes_share_one_store_at_the_same_time(store: Path) -> None:
    # given: a backend holding the store open, with a write of its own
    with opened(store):
        Lead("acme", email="ada@example.com").save()
        pid = store_pid(store)

        # when: other processes open backends on the same store meanwhile (no waiting for a lock)
        started = time.monotonic()
        seen = [subprocess.run([sys.executable, "-c", _OTHER_PROCESS, str(store), email],
                               capture_output=True, text=True, timeout=60) for email in ("b@x.com", "c@x.com")]
        took = time.monotonic() - started

        # then: each saw what was written before it, and this backend sees what they wrote
        assert [s.stdout.strip() for s in seen] == ["ada@example.com", "ada@example.com,b@x.com"], seen
        assert took < 20
        assert sorted(lead.email for lead in Lead.get_all("acme")) == ["ada@example.com", "b@x.com", "c@x.com"]
        # through one store process
        assert store_pid(store) == pid


def test_concurrent_first_starts_make_one_store_process(store: Path) -> None:
    script = textwrap.dedent(
        """
        import json, sys
        from pathlib import Path
        from openbrain.aws.embedded_store import EmbeddedStore

        EmbeddedStore(Path(sys.argv[1])).connect()
        print(json.loads(Path(sys.argv[1] + ".server").read_text())["pid"])
        """
    )
    starts = [subprocess.Popen([sys.executable, "-c", script, str(store)], stdout=subprocess.PIPE, text=True)
              for _ in range(3)]
    pids = {process.communicate(timeout=60)[0].strip() for process in starts}
    assert len(pids) == 1 and pids != {""}


# --- loopback and token ---------------------------------------------------------------------------------------


def test_the_store_listens_on_loopback_and_answers_only_with_its_token(store: Path) -> None:
    with opened(store) as backend:
        state = json.loads(store.with_name("store.json.server").read_text())
        port, token = state["port"], state["token"]
        assert len(token) >= 32

        # only 127.0.0.1 listens
        with socket.socket() as other, pytest.raises(OSError):
            other.settimeout(2)
            other.connect(("127.0.0.2", port))

        # a request without the token, or with another one, is refused
        target = {"X-Amz-Target": "DynamoDB_20120810.ListTables", "Content-Type": "application/x-amz-json-1.0",
                  "Authorization": "AWS4-HMAC-SHA256 Credential=k/20260101/us-east-1/dynamodb/aws4_request, "
                                   "SignedHeaders=host, Signature=0"}
        for headers in (target, {**target, TOKEN_HEADER: "guess"}):
            request = urllib.request.Request(f"http://127.0.0.1:{port}/", data=b"{}", headers=headers)
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(request, timeout=5)
            assert refused.value.code == 403

        # the backend's own clients carry it
        assert "openbrain-leads" in backend.client("dynamodb").list_tables()["TableNames"]
        signed = {**target, TOKEN_HEADER: token}
        request = urllib.request.Request(f"http://127.0.0.1:{port}/", data=b"{}", headers=signed)
        with urllib.request.urlopen(request, timeout=5) as answer:
            assert "openbrain-leads" in json.loads(answer.read())["TableNames"]


# --- the quiet period ------------------------------------------------------------------------------------------


def test_the_store_process_stops_once_idle_with_nobody_attached(store: Path) -> None:
    # given: a store process with a short quiet period, and a backend attached
    with opened(store, memory_store_idle_seconds=0.5):
        Lead("acme", email="ada@example.com").save()
        pid = store_pid(store)
        assert pid is not None

        # when idle with a backend attached, it keeps running
        time.sleep(2)
        assert alive(pid)

    # then: once nobody is attached it stops, writing the tables into the store file
    wait_for(lambda: not alive(pid), 20, "the store process to stop")
    assert not store.with_name("store.json.server").exists()
    assert "ada@example.com" in store.read_text()

    # and the next backend starts a new one on the same data
    with opened(store):
        assert [lead.email for lead in Lead.get_all("acme")] == ["ada@example.com"]
        assert store_pid(store) != pid


def test_an_open_backend_carries_on_when_the_store_process_is_killed(store: Path) -> None:
    # given: an open backend, its store process killed -9 after a write
    with opened(store) as backend:
        Lead("acme", email="ada@example.com").save()
        pid = store_pid(store)
        stop_store(store, signal.SIGKILL)

        # when: it writes and reads again
        Lead("acme", email="grace@example.com").save()

        # then: a new store process serves it, with the earlier write, and the queues are back
        assert store_pid(store) not in (None, pid)
        assert sorted(lead.email for lead in Lead.get_all("acme")) == ["ada@example.com", "grace@example.com"]
        sqs = backend.client("sqs")
        queue = backend.queue_urls["openbrain-lead-webhook"]
        sqs.send_message(QueueUrl=queue, MessageBody="hello")
        assert [m["Body"] for m in sqs.receive_message(QueueUrl=queue)["Messages"]] == ["hello"]
