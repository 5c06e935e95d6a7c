"""DynamoDB's answers to writes that meet a transaction in progress on one of their items, which no emulator
gives: a TransactWriteItems is cancelled (`TransactionConflict`), a single write fails
(`TransactionConflictException`). The counters every turn of a client writes meet often under load, so the stores
send such a write again (storage/dynamodb.py, `CONFLICT_RETRIES`). DynamoDB's answer is handed to the real
botocore client PynamoDB uses, as its `before-call` event lets a caller answer for the service (botocore's
Stubber does the same); everything else is moto."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from openbrain.aws.backend import Backend
from openbrain.core.errors import DatabaseError
from openbrain.storage.dynamodb import COMMIT_CONFLICT_RETRIES
from openbrain.storage.orm import ChatSession, RateCounter
from openbrain.storage.stores import Count

pytestmark = pytest.mark.integration
LATER = 4_102_444_800  # 2100-01-01


class Conflicts:
    """Answers the next `times` calls of `operation` as DynamoDB does when they meet a transaction."""

    def __init__(self, operation: str, times: int, reasons: list[str] | None = None) -> None:
        self.operation, self.left, self.answered = operation, times, 0
        self.reasons = reasons or ["TransactionConflict"]  # a code per item of the transaction ("None": no issue)
        self.tokens: list[str] = []  # the ClientRequestToken of each TransactWriteItems answered

    def __call__(self, params: dict[str, Any] | None = None, **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        if self.left == 0:
            return None  # to moto
        body = (params or {}).get("body") or b"{}"  # the request as it would go out (botocore's request dict)
        self.tokens.append(json.loads(body).get("ClientRequestToken", ""))
        self.left -= 1
        self.answered += 1
        if self.operation == "TransactWriteItems":
            error = {"Code": "TransactionCanceledException",
                     "Message": "Transaction cancelled, please refer cancellation reasons for specific reasons "
                                "[TransactionConflict]"}
            return AWSResponse("", 400, {}, None), {"Error": error, "CancellationReasons": [
                {"Code": code, "Message": "Transaction is ongoing for the item"} if code != "None" else {"Code": code}
                for code in self.reasons]}
        error = {"Code": "TransactionConflictException",
                 "Message": "Transaction is ongoing for the item"}
        return AWSResponse("", 400, {}, None), {"Error": error}


Install = Callable[..., Conflicts]


@pytest.fixture
def conflicts(backend: Backend) -> Iterator[Install]:
    client = RateCounter._get_connection().connection.client
    registered: list[tuple[str, Conflicts]] = []

    def install(operation: str, times: int, reasons: list[str] | None = None) -> Conflicts:
        answer = Conflicts(operation, times, reasons)
        event = f"before-call.dynamodb.{operation}"
        client.meta.events.register_first(event, answer, unique_id=f"conflicts-{operation}")
        registered.append((event, answer))
        return answer

    yield install
    for event, _ in registered:
        client.meta.events.unregister(event, unique_id=f"conflicts-{event.rsplit('.', 1)[1]}")


def test_a_single_count_that_meets_a_transaction_is_counted_once_when_it_ends(backend: Backend,
                                                                               conflicts: Install) -> None:
    # given: the usage row is in a turn's commit (a transaction) when a refusal counts itself on it
    met = conflicts("UpdateItem", 2)

    # when
    assert backend.stores.counters.count([Count("acme#usage#2026-12-04", {"rate_limited": 1}, LATER)]) == []

    # then: sent again, and added exactly once
    assert met.answered == 2
    assert int(RateCounter.get("acme#usage#2026-12-04").rate_limited) == 1


def test_counts_that_meet_a_transaction_are_added_once_when_it_ends(backend: Backend, conflicts: Install) -> None:
    met = conflicts("TransactWriteItems", 2)

    assert backend.stores.counters.count([Count("acme#a", {"turns": 1}, LATER, {"turns": 5}),
                                          Count("acme#b", {"turns": 1}, LATER)]) == []

    assert met.answered == 2
    assert [int(RateCounter.get(key).turns) for key in ("acme#a", "acme#b")] == [1, 1]


def test_a_turns_commit_that_meets_a_transaction_stores_the_turn_and_its_counts_once(backend: Backend,
                                                                                     conflicts: Install) -> None:
    session = ChatSession("acme", profile_name="default")
    met = conflicts("TransactWriteItems", 1)

    backend.stores.sessions.commit(session, counts=[Count("acme#usage#2026-12-04", {"turns": 1}, LATER)])

    assert met.answered == 1
    assert ChatSession.get("acme", session.session_id).version == 1
    assert int(RateCounter.get("acme#usage#2026-12-04").turns) == 1


def test_a_commit_whose_counters_stay_busy_stores_the_turn_alone_and_then_its_counts(backend: Backend,
                                                                                    conflicts: Install) -> None:
    # given: every transaction on the client's counters meets another (a busy client), never the session itself
    session = ChatSession("acme", profile_name="default")
    met = conflicts("TransactWriteItems", 100, ["None", "TransactionConflict", "None"])
    counts = [Count("acme#usage#2026-12-04", {"turns": 1}, LATER), Count("acme#day#2026-12-04", {"tokens": 7}, LATER)]

    # when
    backend.stores.sessions.commit(session, counts=counts)

    # then: a few tries, each with a token of its own; then the turn alone (its model ran: it is not lost) and
    # each count in a write of its own, once
    assert met.answered == COMMIT_CONFLICT_RETRIES + 1
    assert len(set(met.tokens)) == met.answered and all(met.tokens)
    assert ChatSession.get("acme", session.session_id).version == 1
    assert int(RateCounter.get("acme#usage#2026-12-04").turns) == 1
    assert int(RateCounter.get("acme#day#2026-12-04").tokens) == 7


def test_a_commit_that_meets_a_transaction_on_the_session_itself_is_not_split(backend: Backend,
                                                                              conflicts: Install) -> None:
    session = ChatSession("acme", profile_name="default")
    met = conflicts("TransactWriteItems", 100, ["TransactionConflict", "None"])

    with pytest.raises(DatabaseError):
        backend.stores.sessions.commit(session, counts=[Count("acme#usage#2026-12-04", {"turns": 1}, LATER)])

    assert met.answered == COMMIT_CONFLICT_RETRIES + 1
    assert ChatSession.count("acme") == 0 and RateCounter.count("acme#usage#2026-12-04") == 0
