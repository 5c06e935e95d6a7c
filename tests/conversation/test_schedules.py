"""Scheduled messages end to end on the embedded backend: the dps command, the tools, the limits, delivery of both
recipients (stored, announced), recurring and missed times, cancelling, ended sessions. The clock is moved by
passing `now`, never by sleeping."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from support.events import delivered

from openbrain.aws.backend import Backend
from openbrain.conversation.chat import DPS_MODEL, ChatMessage, chat
from openbrain.conversation.schedules import confirmation, deliver, deliver_due, schedule, schedules_of
from openbrain.core.clock import utcnow
from openbrain.core.errors import ConflictError, InvalidInputError, NotFoundError, ScheduleLimitError, SessionEndedError
from openbrain.domain.limits import RateLimits
from openbrain.domain.scheduling import DPS_HELP, parse_dps
from openbrain.services.sessions import cancel_schedule, get_session, session_schedules
from openbrain.storage.orm import AgentConfig, ChatSession, Client

pytestmark = pytest.mark.integration

TOOLS = ["schedule_message", "list_schedules", "cancel_schedule", "end_conversation"]
MESSAGES_QUEUE = "openbrain-message-webhook"


@pytest.fixture
def acme(backend: Backend) -> Client:
    client = Client("acme", display_name="Acme")
    client.save()
    AgentConfig("acme", "default", icebreaker="Hi!", model="offline", tools=TOOLS).save()
    return client


def _start(context: dict[str, str] | None = None) -> str:
    return chat(ChatMessage.parse({"clientId": "acme", "reset": True, "context": context or {}})).session_id


def _say(session_id: str, message: str) -> object:
    return chat(ChatMessage.parse({"clientId": "acme", "sessionId": session_id, "message": message}))


def _session(session_id: str) -> ChatSession:
    return ChatSession.get("acme", session_id)


def _waiting(backend: Backend) -> int:
    found = backend.stores.counters.read(["acme#schedules"])
    return int(found["acme#schedules"].active) if "acme#schedules" in found else 0


def test_a_dps_command_schedules_a_message_and_says_when_and_its_id(acme: Client, backend: Backend) -> None:
    # given
    session_id = _start({"timezone": "Europe/London"})
    before = utcnow()
    # when
    response = _say(session_id, "dps c in 20 minutes\n\nTell me a fact\nabout monkeys")
    # then
    [waiting] = schedules_of(_session(session_id))
    assert waiting.recipient == "chatbot" and waiting.prompt == "Tell me a fact\nabout monkeys"
    assert before + timedelta(minutes=20, seconds=-1) <= waiting.next_at  # Scheduler's at() counts whole seconds
    assert waiting.next_at <= utcnow() + timedelta(minutes=20)
    assert waiting.timezone == "Europe/London" and waiting.created_by == "user" and not waiting.recurring
    assert waiting.id in response.message and "Europe/London" in response.message
    assert response.model == DPS_MODEL and [e["type"] for e in response.events] == ["message.scheduled.v1"]
    # the command is not part of the conversation: no turn ran, the transcript holds the icebreaker alone
    assert [m.content for m in get_session(backend.stores, "acme", session_id).messages] == ["Hi!"]
    assert _session(session_id).turn_count == 0
    assert _waiting(backend) == 1


def test_dps_alone_or_help_explains_the_syntax_and_stores_nothing(acme: Client) -> None:
    session_id = _start()
    for command in ("dps", "DPS help", "  dps  "):
        assert _say(session_id, command).message == DPS_HELP
    assert schedules_of(_session(session_id)) == []


def test_a_dps_command_may_start_a_session(acme: Client) -> None:
    response = chat(ChatMessage.parse({"clientId": "acme", "message": "dps u in 2 hours\nStretch!"}))
    assert [s.prompt for s in schedules_of(_session(response.session_id))] == ["Stretch!"]


@pytest.mark.parametrize(("command", "says"), [
    ("dps x in 5 minutes\nhi", "recipient"),
    ("dps c whenever you like\nhi", "whenever you like"),
    ("dps c in 5 minutes", "prompt"),
    ("dps u every 5 minutes\nhi", "15 minutes"),
    ("dps u yesterday at 5pm\nhi", "past"),
])
def test_a_dps_command_not_understood_says_which_part_and_stores_nothing(acme: Client, backend: Backend,
                                                                         command: str, says: str) -> None:
    session_id = _start()
    stored = _session(session_id).version
    with pytest.raises(InvalidInputError) as refused:
        _say(session_id, command)
    assert says in refused.value.message
    assert _session(session_id).version == stored
    assert _waiting(backend) == 0


def test_the_session_and_client_limits_refuse_more_schedules_until_one_is_cancelled(acme: Client,
                                                                                   backend: Backend) -> None:
    # given: two per session, three for the client
    backend.stores.clients.set_limits(acme, RateLimits(schedules_per_session=2, schedules_per_client=3).changed())
    first, second = _start(), _start()
    _say(first, "dps u in 1 hour\none")
    _say(first, "dps u in 2 hours\ntwo")
    # when / then: the session is full
    with pytest.raises(ScheduleLimitError, match="schedules_per_session"):
        _say(first, "dps u in 3 hours\nthree")
    _say(second, "dps u in 1 hour\nthree")
    # the client is full
    with pytest.raises(ScheduleLimitError, match="schedules_per_client"):
        _say(second, "dps u in 2 hours\nfour")
    assert _waiting(backend) == 3
    # cancelling one frees a place
    cancelled = cancel_schedule(backend, "acme", first, schedules_of(_session(first))[0].id)
    assert cancelled.prompt == "one" and _waiting(backend) == 2
    _say(second, "dps u in 2 hours\nfour")
    assert [s.prompt for s in session_schedules(backend.stores, "acme", second).schedules] == ["three", "four"]


def test_the_model_schedules_through_its_tool(acme: Client, backend: Backend) -> None:
    # given
    session_id = _start()
    # when
    response = _say(session_id, "remind me in 5 minutes to stretch")
    # then
    [waiting] = schedules_of(_session(session_id))
    assert (waiting.recipient, waiting.prompt, waiting.created_by) == ("chatbot", "Remind the person to stretch",
                                                                       "model")
    assert response.tool_calls == ["schedule_message"]
    assert [e["type"] for e in response.events] == ["message.scheduled.v1"]
    # and: the offline model says so in its own words, not the tool result's words to the model
    assert response.message == f"I'll remind you: {waiting.description} (its id is {waiting.id})."
    # and lists and cancels through its tools
    assert waiting.id in _say(session_id, "list my reminders").message
    assert "Cancelled" in _say(session_id, f"cancel reminder {waiting.id}").message
    assert schedules_of(_session(session_id)) == [] and _waiting(backend) == 0


def test_a_prompt_to_the_chatbot_is_answered_stored_and_announced(acme: Client, backend: Backend) -> None:
    # given
    session_id = _start()
    _say(session_id, "dps c in 1 minute\nwhat is 6 * 7")
    delivered(backend, MESSAGES_QUEUE)  # the message.scheduled.v1 event
    # when: nothing is due yet, then the clock passes the time
    assert deliver_due(backend, utcnow()) == []
    [done] = deliver_due(backend, utcnow() + timedelta(minutes=1, seconds=1))
    # then
    assert done.next_at is None and done.text
    messages = get_session(backend.stores, "acme", session_id).messages
    assert [(m.role, m.content, m.scheduled) for m in messages[1:2]] == [("user", "what is 6 * 7", True)]
    assert (messages[-1].role, messages[-1].content, messages[-1].scheduled) == ("assistant", done.text, False)
    session = _session(session_id)
    assert session.schedules is None and session.next_schedule_at is None and session.turn_count == 1
    [event] = delivered(backend, MESSAGES_QUEUE)
    assert event["detail-type"] == "message.delivered.v1"
    assert (event["detail"]["recipient"], event["detail"]["text"]) == ("chatbot", done.text)
    assert _waiting(backend) == 0


def test_a_message_to_the_user_is_stored_as_the_assistant_s_and_runs_no_model(acme: Client, backend: Backend) -> None:
    session_id = _start()
    _say(session_id, "dps user in 10 minutes\nDrink some water.\nThen stretch.")
    [done] = deliver_due(backend, utcnow() + timedelta(minutes=11))
    assert done.text == "Drink some water.\nThen stretch."
    last = get_session(backend.stores, "acme", session_id).messages[-1]
    assert (last.role, last.content, last.scheduled) == ("assistant", done.text, True)
    assert _session(session_id).turn_count == 0


def test_a_recurring_message_moves_to_its_next_time_and_each_time_is_delivered_once(acme: Client,
                                                                                    backend: Backend) -> None:
    # given
    session_id = _start({"timezone": "America/New_York"})
    _say(session_id, "dps u every day at 8am\nGood morning!")
    [first] = schedules_of(_session(session_id))
    target = first.target(_session(session_id))
    # when: delivered at its time, and that time again (a Scheduler retry)
    done = deliver(backend, target, first.next_at, now=first.next_at + timedelta(seconds=3))
    again = deliver(backend, target, first.next_at, now=first.next_at + timedelta(seconds=9))
    # then
    assert done.text == "Good morning!" and done.next_at == first.next_at + timedelta(days=1)
    assert again.text is None
    [moved] = schedules_of(_session(session_id))
    assert (moved.next_at, moved.deliveries) == (first.next_at + timedelta(days=1), 1)
    assert [m.content for m in get_session(backend.stores, "acme", session_id).messages].count("Good morning!") == 1
    assert _waiting(backend) == 1


def test_times_missed_while_nothing_ran_are_delivered_once_late(acme: Client, backend: Backend) -> None:
    session_id = _start()
    _say(session_id, "dps u every day at 9am\nHello again")
    [first] = schedules_of(_session(session_id))
    later = first.next_at + timedelta(days=3, hours=1)
    [done] = deliver_due(backend, later)
    assert done.text == "Hello again" and done.next_at == first.next_at + timedelta(days=4)
    assert deliver_due(backend, later) == []


def test_ending_the_conversation_cancels_its_schedules(acme: Client, backend: Backend) -> None:
    session_id = _start()
    _say(session_id, "dps u every day at 9am\nHello again")
    _say(session_id, "dps c in 3 hours\nping")
    assert _waiting(backend) == 2
    _say(session_id, "goodbye")
    assert _session(session_id).schedules is None and _waiting(backend) == 0
    with pytest.raises(SessionEndedError):
        _say(session_id, "dps u in 1 hour\nstill there?")


def test_a_schedule_that_is_not_on_its_session_does_nothing(acme: Client, backend: Backend) -> None:
    session_id = _start()
    _say(session_id, "dps u in 1 hour\nhi")
    [waiting] = schedules_of(_session(session_id))
    target = waiting.target(_session(session_id))
    cancel_schedule(backend, "acme", session_id, waiting.id)
    assert deliver(backend, target, waiting.next_at, now=waiting.next_at).text is None
    with pytest.raises(NotFoundError):
        cancel_schedule(backend, "acme", session_id, waiting.id)


def test_another_client_cannot_see_or_cancel_a_session_s_schedules(acme: Client, backend: Backend) -> None:
    session_id = _start()
    _say(session_id, "dps u in 1 hour\nhi")
    [waiting] = schedules_of(_session(session_id))
    Client("globex", display_name="Globex").save()
    with pytest.raises(NotFoundError):
        session_schedules(backend.stores, "globex", session_id)
    with pytest.raises(NotFoundError):
        cancel_schedule(backend, "globex", session_id, waiting.id)
    assert schedules_of(_session(session_id)) == [waiting]


def test_a_schedule_whose_commit_fails_is_given_back(acme: Client, backend: Backend) -> None:
    # given: a copy of the session read before another turn saved it
    session_id = _start()
    stale = _session(session_id)
    _say(session_id, "dps u in 1 hour\nfirst")
    # when
    with pytest.raises(ConflictError):
        schedule(stale, backend, "user", "in 2 hours", "second", created_by="api")
    # then
    assert [s.prompt for s in schedules_of(_session(session_id))] == ["first"]
    assert _waiting(backend) == 1


ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("doc", ["README.md", "docs/scheduling.md"])
def test_the_dps_examples_of_the_docs_schedule_what_they_say(acme: Client, doc: str) -> None:
    examples = re.findall(r"^```dps\n(.*?)^```$", (ROOT / doc).read_text(), re.M | re.S)
    assert examples
    for example in examples:
        command = parse_dps(example)
        assert command is not None and command.recipient is not None
        session_id = _start({"timezone": "Europe/London"})
        answer = _say(session_id, example.strip())
        [waiting] = schedules_of(_session(session_id))
        assert (waiting.recipient, waiting.prompt, waiting.time_prompt) == (
            command.recipient, command.prompt, command.time_prompt)
        assert answer.message == confirmation(waiting) and "Europe/London" in answer.message
