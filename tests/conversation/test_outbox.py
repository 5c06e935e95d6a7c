"""The turn's side effects: load → run → commit → publish (docs/events.md, "The outbox").

A turn's lead and events exist exactly when its session commit succeeded; what a failed or crashed publish
leaves in the outbox is published by the session's next turn or by the sweep. Everything here runs on the
embedded AWS: real DynamoDB transactions (moto), real EventBridge → SQS delivery.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from langchain_core.messages import AIMessage
from support.events import delivered
from support.scripted_chat import ScriptedChatModel, tool_call_reply

from openbrain.aws.backend import Backend
from openbrain.aws.events import EventPublisher
from openbrain.conversation import outbox
from openbrain.conversation.chat import ChatMessage, chat, continue_session
from openbrain.core.errors import ConflictError, UpstreamError
from openbrain.storage.orm import ChatSession, Lead

pytestmark = pytest.mark.integration
CLIENT = "public"


def _start() -> str:
    return chat(ChatMessage(reset=True)).session_id


def _session(session_id: str) -> ChatSession:
    return ChatSession.get(CLIENT, session_id)


def _broken_bus(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    """EventBridge refuses every event from now on (the bus the publisher names does not exist)."""
    monkeypatch.setattr(backend, "_publisher", EventPublisher(backend.client("events"), "no-such-bus"))


def test_a_committed_turn_writes_its_lead_and_publishes_its_event_once(backend: Backend) -> None:
    session_id = _start()

    response = chat(ChatMessage(session_id=session_id, message="I'm Ada Lovelace, ada@example.com"))

    [lead] = Lead.get_all(CLIENT)
    [event] = delivered(backend)
    assert (event["detail-type"], event["detail"]["lead_id"]) == ("lead.captured.v1", lead.lead_id)
    assert event["detail"]["event_id"] == response.events[0]["event_id"]
    stored = _session(session_id)
    assert (stored.lead_id, stored.outbox) == (lead.lead_id, None)


def test_a_turn_that_lost_the_race_writes_no_lead_and_emits_nothing(backend: Backend) -> None:
    # given two copies of one session, as two concurrent Lambdas would load it; the first turn wins
    session_id = _start()
    first, second = _session(session_id), _session(session_id)
    continue_session(first, "hello", backend)

    # when the losing turn captured a lead
    with pytest.raises(ConflictError):
        continue_session(second, "my email is ada@example.com", backend)

    # then nothing of it exists: no lead, no event, the session as the winner left it
    assert Lead.get_all(CLIENT) == []
    assert delivered(backend) == []
    stored = _session(session_id)
    assert (stored.lead_id, stored.recent_events, stored.outbox, stored.turn_count) == (None, [], None, 1)


def _fail_after(replies: list[AIMessage]) -> ScriptedChatModel:
    def fail(call: int) -> AIMessage:
        raise UpstreamError("the model provider answered with an error (HTTP 500)")
    return ScriptedChatModel(replies=replies, forever=fail)


@pytest.mark.parametrize("new_session", [True, False])
def test_a_turn_that_fails_after_its_tools_ran_writes_and_emits_nothing(backend: Backend, new_session: bool) -> None:
    # given: the model captures a lead and ends the conversation, then fails on the follow-up call
    model = _fail_after([AIMessage("", tool_calls=[
        {"name": "capture_lead", "args": {"email": "ada@example.com"}, "id": "call_1", "type": "tool_call"},
        {"name": "end_conversation", "args": {}, "id": "call_2", "type": "tool_call"},
    ])])
    request = ChatMessage(message="ada@example.com, bye", session_id=None if new_session else _start())

    # when
    with pytest.raises(UpstreamError):
        chat(request, model=model)

    # then: no lead, no event, and the session is as it was (a new one was never stored)
    assert Lead.get_all(CLIENT) == []
    assert delivered(backend) == []
    sessions = ChatSession.get_all(CLIENT)
    assert [(s.turn_count, s.lead_id, s.ended, s.outbox) for s in sessions] == ([] if new_session else [
        (0, None, False, None)])


@pytest.fixture
def atomic_moto(monkeypatch: pytest.MonkeyPatch) -> None:
    """One emulated AWS request at a time. moto checks a condition and then writes without a lock, so two
    threads' conditional writes can both pass; DynamoDB (and our store process, which serialises writes:
    openbrain/aws/store_server.py) check and write atomically. Without this, the test below measures moto."""
    from moto.core.botocore_stubber import BotocoreStubber

    original = BotocoreStubber.process_request
    lock = threading.Lock()

    def process_request(self: BotocoreStubber, request: Any) -> Any:
        with lock:
            return original(self, request)

    monkeypatch.setattr(BotocoreStubber, "process_request", process_request)


@pytest.mark.usefixtures("atomic_moto")
def test_two_workers_capturing_leads_in_one_session_leave_one_lead_and_one_event_per_committed_turn(
    backend: Backend,
) -> None:
    # given: one session; two workers each send 20 turns, every one with a new phone number
    session_id = _start()
    committed: list[Any] = []
    conflicts: list[int] = []

    def worker(number: int) -> None:
        for turn in range(20):
            message = f"I'm Ada Lovelace, ada@example.com, phone +1 555 01{number}{turn:02d}"
            try:
                committed.append(chat(ChatMessage(session_id=session_id, message=message)))
            except ConflictError:
                conflicts.append(turn)

    threads = [threading.Thread(target=worker, args=(n,)) for n in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # then: exactly one lead; one published lead event per committed turn (each changed it), none from a loser
    assert len(committed) + len(conflicts) == 40 and committed
    [lead] = Lead.get_all(CLIENT)
    events = {event["detail"]["event_id"]: event for event in delivered(backend)}
    returned = [event for response in committed for event in response.events]
    assert sorted(events) == sorted(event["event_id"] for event in returned)
    assert len(events) == len(committed)
    assert {event["detail"]["lead_id"] for event in events.values()} == {lead.lead_id}
    stored = _session(session_id)
    assert (stored.turn_count, stored.lead_id, stored.outbox) == (len(committed), lead.lead_id, None)


def test_a_refused_publish_keeps_the_outbox_and_the_next_turn_publishes_it(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: the bus refuses events while a turn captures a lead
    session_id = _start()
    _broken_bus(backend, monkeypatch)
    first = chat(ChatMessage(session_id=session_id, message="ada@example.com"))

    # then: the turn still answered and committed; its event waits in the session's outbox
    assert [e["type"] for e in first.events] == ["lead.captured.v1"]
    assert len(Lead.get_all(CLIENT)) == 1
    assert [entry["detail"]["event_id"] for entry in _session(session_id).outbox] == [first.events[0]["event_id"]]
    assert delivered(backend) == []

    # when: the bus is back and the session's next turn commits
    monkeypatch.undo()
    backend._publisher = None
    second = chat(ChatMessage(session_id=session_id, message="and my phone is +1 555 010 0199"))

    # then: both turns' events are published, in order, and the outbox is empty
    assert [e["detail"]["event_id"] for e in delivered(backend)] == [
        first.events[0]["event_id"], second.events[0]["event_id"]]
    assert _session(session_id).outbox is None


def test_a_crash_between_commit_and_publish_loses_no_event(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    # given: the process dies right after the commit, before publishing
    class Crash(BaseException):
        pass

    def crash(session: ChatSession, backend: Backend) -> bool:
        raise Crash

    session_id = _start()
    monkeypatch.setattr(outbox, "publish", crash)
    with pytest.raises(Crash):
        chat(ChatMessage(session_id=session_id, message="ada@example.com"))
    monkeypatch.undo()
    [waiting] = _session(session_id).outbox

    # when: the sweep runs (a young outbox is left to its turn; an old one is published)
    assert outbox.flush(backend) == outbox.FlushReport()
    report = outbox.flush(backend, grace=timedelta(0))

    # then
    assert report == outbox.FlushReport(sessions=1, events=1)
    [event] = delivered(backend)
    assert event["detail"]["event_id"] == waiting["detail"]["event_id"]
    assert _session(session_id).outbox is None
    assert outbox.flush(backend, grace=timedelta(0)) == outbox.FlushReport()


def test_a_sweep_keeps_what_the_bus_refuses(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    session_id = _start()
    _broken_bus(backend, monkeypatch)
    chat(ChatMessage(session_id=session_id, message="ada@example.com"))

    assert outbox.flush(backend, grace=timedelta(0)) == outbox.FlushReport(sessions=1, failed=1)
    assert len(_session(session_id).outbox) == 1


def test_clearing_an_outbox_that_a_later_turn_carried_over_changes_nothing(backend: Backend) -> None:
    # given: a session whose outbox a later turn committed again (with its own events)
    session_id = _start()
    stale = _session(session_id)
    stale.outbox = [{"type": "conversation.ended.v1", "detail": {}}]
    fresh = _session(session_id)
    fresh.outbox = [{"type": "lead.captured.v1", "detail": {}}]
    backend.stores.sessions.save(fresh)

    # when the first publisher clears what it published
    cleared = backend.stores.sessions.clear_outbox(stale)

    # then the later turn's outbox stays
    assert cleared is False
    assert _session(session_id).outbox == [{"type": "lead.captured.v1", "detail": {}}]


def test_a_turn_without_events_writes_the_session_in_one_put(backend: Backend) -> None:
    from support.conformance import counting

    session_id = _start()
    session = _session(session_id)
    with counting("TransactWriteItems") as transactions, counting("PutItem") as puts, \
            counting("UpdateItem") as updates:
        continue_session(session, "what time is it in Tokyo?", backend, model=ScriptedChatModel(
            replies=[tool_call_reply("get_current_time", {"timezone": "Asia/Tokyo"}), AIMessage("It is late.")]))
    assert (len(transactions), len(puts), len(updates)) == (0, 1, 0)


def test_an_outbox_that_cannot_be_cleared_still_answers_the_turn(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: DynamoDB refuses the clear after the events were published
    def refuse(session: ChatSession) -> bool:
        raise UpstreamError("DynamoDB could not clear the outbox (ProvisionedThroughputExceededException)")

    session_id = _start()
    monkeypatch.setattr(backend.stores.sessions, "clear_outbox", refuse)

    # when
    response = chat(ChatMessage(session_id=session_id, message="ada@example.com"))

    # then: the turn answered, its event was published, and the outbox waits for a sweep (a harmless repeat)
    assert [e["detail"]["event_id"] for e in delivered(backend)] == [response.events[0]["event_id"]]
    assert len(_session(session_id).outbox) == 1
