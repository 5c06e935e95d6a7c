"""Usage (services/usage.py): every turn of a client's keys counted per UTC day in its own commit, a widget-key
turn's rate limits settled in that same write (one DynamoDB call more than a server-key turn, not two), failed
and refused requests counted apart, and the report `GET /usage` and `ob-admin usage` show."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from support.conformance import counting

from openbrain.aws.backend import Backend
from openbrain.conversation.chat import ChatMessage
from openbrain.core.clock import utcnow
from openbrain.core.errors import DatabaseError, InvalidInputError, RateLimitedError
from openbrain.services.chat import ChatCall, chat_as_client
from openbrain.services.clients import set_limits
from openbrain.services.usage import TurnUsage, date_range, usage_key, usage_report
from openbrain.storage.orm import AgentConfig, Client, RateCounter
from openbrain.storage.orm.client import SERVER, WIDGET
from openbrain.storage.stores import Count

OPEN = {"user_per_minute": 1000, "user_burst": 1000, "client_per_minute": 1000}


@pytest.fixture
def client(backend: Backend) -> Client:
    Client("acme", display_name="Acme").save()
    AgentConfig("acme", "default", model="offline").save()
    set_limits(backend.stores, backend.stores.clients.get("acme"), {**OPEN, "session_concurrency": 1})
    return backend.stores.clients.get("acme")


def _today(backend: Backend) -> RateCounter:
    return backend.stores.counters.read([usage_key("acme", utcnow().date())])[usage_key("acme", utcnow().date())]


@pytest.mark.parametrize(("kind", "calls"), [
    (SERVER, ["GetItem", "TransactWriteItems"]),  # read the session; commit it with the usage
    (WIDGET, ["TransactWriteItems", "GetItem", "TransactWriteItems"]),  # the admission first
])
def test_a_turn_costs_its_read_and_one_commit_plus_the_admission_for_a_widget_key(
        backend: Backend, client: Client, kind: str, calls: list[str]) -> None:
    session = chat_as_client(client, ChatMessage(reset=True), ChatCall(key_kind=SERVER), backend)[0].session_id

    with counting() as made:
        reply, _ = chat_as_client(client, ChatMessage(session_id=session, message="what is 6 * 7?"),
                                  ChatCall(key_kind=kind, end_user="203.0.113.9"), backend)

    assert made == calls
    assert reply.message


def test_a_committed_turn_frees_its_sessions_slot_and_counts_its_tokens_to_the_quota(
        backend: Backend, client: Client) -> None:
    call = ChatCall(end_user="203.0.113.9")
    session = chat_as_client(client, ChatMessage(message="hello"), call, backend)[0].session_id

    for message in ("one", "two"):  # one turn at a time per session: each freed the slot in its commit
        chat_as_client(client, ChatMessage(session_id=session, message=message), call, backend)

    day = backend.stores.counters.read([f"acme#day#{utcnow():%Y-%m-%d}"])[f"acme#day#{utcnow():%Y-%m-%d}"]
    usage = _today(backend)
    assert day.turns == 3 and day.tokens == usage.input_tokens + usage.output_tokens > 0
    assert (usage.turns, usage.errors, usage.rate_limited) == (3, None, None)  # never added to


def test_every_keys_turns_are_counted_and_the_observer_hears_each(backend: Backend, client: Client) -> None:
    heard: list[TurnUsage] = []

    for kind in (SERVER, WIDGET):
        chat_as_client(client, ChatMessage(message="what is 2 + 2?"), ChatCall(key_kind=kind, observe=heard.append),
                       backend)
    chat_as_client(client, ChatMessage(reset=True), ChatCall(observe=heard.append), backend)  # runs no model

    usage = _today(backend)
    assert usage.turns == 2 and usage.latency_ms >= 0
    assert [u.turns for u in heard] == [1, 1]
    assert sum(u.input_tokens for u in heard) == usage.input_tokens > 0
    assert sum(u.output_tokens for u in heard) == usage.output_tokens > 0


def test_a_turn_that_fails_after_it_started_counts_an_error_and_frees_its_slot_in_one_write(
        backend: Backend, client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    call = ChatCall(end_user="203.0.113.9")
    session = chat_as_client(client, ChatMessage(message="hello"), call, backend)[0].session_id

    def refuse(*_: object, **__: object) -> None:
        raise DatabaseError("DynamoDB could not save the session (InternalServerError)")

    with monkeypatch.context() as patched:
        patched.setattr(backend.stores.sessions, "commit", refuse)
        with counting() as made, pytest.raises(DatabaseError):
            chat_as_client(client, ChatMessage(session_id=session, message="again"), call, backend)

    assert made == ["TransactWriteItems", "GetItem", "TransactWriteItems"]  # admit, read, settle + the error
    usage = _today(backend)
    assert (usage.turns, usage.errors) == (1, 1)
    chat_as_client(client, ChatMessage(session_id=session, message="and again"), call, backend)  # slot free


def test_a_request_refused_by_a_rate_limit_is_counted_as_rate_limited_not_as_a_turn(
        backend: Backend, client: Client) -> None:
    set_limits(backend.stores, client, {"turns_per_day": 1})
    chat_as_client(client, ChatMessage(message="hello"), ChatCall(), backend)
    heard: list[TurnUsage] = []

    with counting() as made, pytest.raises(RateLimitedError):
        chat_as_client(client, ChatMessage(message="again"), ChatCall(observe=heard.append), backend)

    assert made == ["TransactWriteItems", "UpdateItem"]  # the refused admission, then the count of it
    usage = _today(backend)
    assert (usage.turns, usage.rate_limited, usage.errors) == (1, 1, None)
    assert heard == [TurnUsage("acme", rate_limited=1)]


def test_a_report_has_the_days_with_usage_and_their_totals(backend: Backend) -> None:
    day = date(2026, 11, 30)
    counts = [TurnUsage("acme", turns=2, input_tokens=30, output_tokens=12, latency_ms=300),
              TurnUsage("acme", errors=1), TurnUsage("acme", rate_limited=4)]
    backend.stores.counters.count([Count(usage_key("acme", day + timedelta(days=n)), c.count(
        utcnow()).add, c.count(utcnow()).expires_at) for n, c in enumerate(counts)])
    backend.stores.counters.count([TurnUsage("globex", turns=9).count(utcnow())])  # another client's

    report = usage_report(backend.stores.counters, "acme", day - timedelta(days=1), day + timedelta(days=3))

    assert [(row.day, row.turns, row.errors, row.rate_limited) for row in report.days] == [
        (day, 2, 0, 0), (day + timedelta(days=1), 0, 1, 0), (day + timedelta(days=2), 0, 0, 4)]
    assert report.days[0].mean_latency_ms == 150.0 and report.days[1].mean_latency_ms is None
    assert report.totals.model_dump() == {"turns": 2, "input_tokens": 30, "output_tokens": 12, "errors": 1,
                                          "rate_limited": 4, "mean_latency_ms": 150.0}
    assert report.model_dump(mode="json", by_alias=True)["from"] == "2026-11-29"


def test_a_usage_range_defaults_to_the_last_30_days_and_is_at_most_366(backend: Backend) -> None:
    today = date(2026, 12, 4)
    assert date_range(None, None, today) == (date(2026, 11, 5), today)
    assert date_range(date(2026, 1, 1), None, today) == (date(2026, 1, 1), today)
    assert date_range(None, date(2026, 1, 30), today) == (date(2026, 1, 1), date(2026, 1, 30))
    assert date_range(date(2025, 12, 4), today, today)[0] == date(2025, 12, 4)  # 366 days
    with pytest.raises(InvalidInputError, match="at most 366"):
        date_range(date(2025, 12, 3), today, today)
    with pytest.raises(InvalidInputError, match="after"):
        date_range(today, today - timedelta(days=1), today)



@given(start=st.none() | st.dates(), end=st.none() | st.dates(), today=st.dates())
@example(start=None, end=date.min, today=date(2026, 12, 4)).via("the long fuzz run's ?to=0001-01-01")
@example(start=None, end=None, today=date.min + timedelta(days=3))
def test_any_range_of_days_is_a_range_of_at_most_366_days_or_invalid_input(start: date | None, end: date | None,
                                                                           today: date) -> None:
    # the long fuzz run found ?to=0001-01-01 answered 500: 30 days before it do not exist
    try:
        first, last = date_range(start, end, today)
    except InvalidInputError:
        return
    assert first <= last and (last - first).days < 366
    assert (first if start else last) == (start or end or today)

def test_a_report_of_a_year_reads_every_day(backend: Backend) -> None:
    start = date(2025, 12, 4)
    backend.stores.counters.count([Count(usage_key("acme", start + timedelta(days=n)), {"turns": 1}, 4_102_444_800)
                                   for n in (0, 150, 365)])

    with counting("BatchGetItem") as requests:
        report = usage_report(backend.stores.counters, "acme", start, start + timedelta(days=365))

    assert report.totals.turns == 3 and len(report.days) == 3
    assert len(requests) == 4  # 100 keys a request
