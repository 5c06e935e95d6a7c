"""Hard rate limits and quotas (services/limits.py): exact under concurrency, windows that reset, per-user
limits that leave other users alone, token quotas, and a refused turn that runs and stores nothing."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.backend import installed_backend
from support.fake_openai import TEST_KEY, FakeOpenAI, Reply

from openbrain.api.streaming import chat_stream
from openbrain.aws.backend import Backend
from openbrain.conversation.chat import ChatMessage
from openbrain.core.errors import RateLimitedError
from openbrain.core.settings import Settings
from openbrain.services.chat import ChatCall, chat_as_client
from openbrain.services.clients import set_limits
from openbrain.services.limits import admit
from openbrain.storage.orm import AgentConfig, ChatSession, Client
from openbrain.storage.orm.client import SERVER

NOW = datetime(2026, 12, 3, 10, 0, 5, tzinfo=UTC)  # 5 s into a minute and a 10-second window
OPEN = {"user_per_minute": 1000, "user_burst": 1000, "client_per_minute": 1000, "session_concurrency": 1000}


def _client(backend: Backend, **limits: int) -> Client:
    client = Client("acme", display_name="Acme")
    client.save()
    AgentConfig("acme", "default", model="offline").save()
    set_limits(backend.stores, client, limits)
    return backend.stores.clients.get("acme")


def _admitted(client: Client, backend: Backend, times: int, *, user: str = "203.0.113.9",
              session: str | None = None, now: datetime = NOW) -> int:
    admitted = 0
    for _ in range(times):
        try:
            admit(client, user, session, backend.stores.counters, now)
            admitted += 1
        except RateLimitedError:
            pass
    return admitted


def test_the_burst_and_the_minute_admit_exactly_their_limit_and_reset_with_their_window(backend: Backend) -> None:
    client = _client(backend, user_burst=3, user_per_minute=5)

    assert _admitted(client, backend, 5) == 3  # the burst: 3 per 10 s
    with pytest.raises(RateLimitedError) as refused:
        admit(client, "203.0.113.9", None, backend.stores.counters, NOW)
    assert refused.value.retry_after == 5  # the 10-second window ends at :10
    assert refused.value.code == "rate_limited"
    assert _admitted(client, backend, 5, now=NOW + timedelta(seconds=10)) == 2  # a new burst window; 5 a minute
    with pytest.raises(RateLimitedError) as refused_minute:
        admit(client, "203.0.113.9", None, backend.stores.counters, NOW + timedelta(seconds=20))
    assert refused_minute.value.retry_after == 35  # at 10:00:25, the minute ends at 10:01:00
    assert _admitted(client, backend, 3, now=NOW + timedelta(seconds=60)) == 3  # the next minute


def test_per_user_limits_do_not_block_another_user_but_the_clients_limit_binds_them_all(backend: Backend) -> None:
    client = _client(backend, user_burst=2, user_per_minute=2, client_per_minute=5)

    assert _admitted(client, backend, 4, user="198.51.100.1") == 2
    assert _admitted(client, backend, 4, user="198.51.100.2") == 2
    assert _admitted(client, backend, 4, user="198.51.100.3") == 1  # the client's 5 a minute


def test_a_session_runs_its_concurrency_limit_of_turns_at_once_and_a_finished_one_frees_its_slot(
        backend: Backend) -> None:
    client = _client(backend, **{**OPEN, "session_concurrency": 2})
    first = admit(client, "u", "01SESSION", backend.stores.counters, NOW)
    admit(client, "u", "01SESSION", backend.stores.counters, NOW)
    with pytest.raises(RateLimitedError) as refused:
        admit(client, "u", "01SESSION", backend.stores.counters, NOW)
    assert refused.value.retry_after == 1
    admit(client, "u", "01OTHER", backend.stores.counters, NOW)  # another session is not held up

    backend.stores.counters.count(first.counts(None))

    admit(client, "u", "01SESSION", backend.stores.counters, NOW)


def test_token_quotas_count_the_turns_usage_and_refuse_the_next_turn(backend: Backend) -> None:
    client = _client(backend, **OPEN, tokens_per_day=100)
    for tokens in (99, 50):  # 99 is under 100 before the second turn: it runs
        backend.stores.counters.count(admit(client, "u", None, backend.stores.counters, NOW).counts(
            {"total_tokens": tokens}))

    with pytest.raises(RateLimitedError) as refused:
        admit(client, "u", None, backend.stores.counters, NOW)

    assert "daily quota" in refused.value.message
    assert refused.value.retry_after == 14 * 3600 - 5  # until midnight UTC
    assert _admitted(client, backend, 1, now=NOW + timedelta(days=1)) == 1  # a new day


def test_monthly_quotas_reset_with_the_calendar_month(backend: Backend) -> None:
    client = _client(backend, **OPEN, turns_per_month=2)
    december = datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)

    assert _admitted(client, backend, 3, now=december) == 2
    with pytest.raises(RateLimitedError) as refused:
        admit(client, "u", None, backend.stores.counters, december)
    assert refused.value.retry_after == 1
    assert _admitted(client, backend, 1, now=december + timedelta(seconds=1)) == 1


def test_a_limit_of_zero_refuses_every_turn(backend: Backend) -> None:
    client = _client(backend, turns_per_day=0)
    assert _admitted(client, backend, 2) == 0


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(limit=st.integers(0, 6), tries=st.integers(0, 9), second=st.integers(0, 59))
def test_within_one_minute_a_limit_admits_exactly_min_of_limit_and_tries(backend: Backend, limit: int, tries: int,
                                                                          second: int) -> None:
    client = Client(f"c{limit}-{tries}-{second}", display_name="c")
    client.save()
    set_limits(backend.stores, client, {**OPEN, "client_per_minute": limit})
    client = backend.stores.clients.get(client.client_id)
    minute = NOW.replace(second=0) + timedelta(seconds=second)

    assert _admitted(client, backend, tries, now=minute) == min(limit, tries)


def test_a_refused_turn_runs_nothing_and_stores_nothing(backend: Backend) -> None:
    client = _client(backend, turns_per_day=1)
    call = ChatCall(end_user="203.0.113.9")
    reply, _ = chat_as_client(client, ChatMessage(message="hello"), call, backend)

    with pytest.raises(RateLimitedError):
        chat_as_client(client, ChatMessage(session_id=reply.session_id, message="again"), call, backend)
    with pytest.raises(RateLimitedError):
        chat_as_client(client, ChatMessage(message="a new session"), call, backend)

    assert [s.session_id for s in backend.stores.sessions.of_client("acme")] == [reply.session_id]
    assert ChatSession.get("acme", reply.session_id).turn_count == 1


def test_a_server_keys_turns_are_not_limited(backend: Backend) -> None:
    client = _client(backend, turns_per_day=0)
    reply, _ = chat_as_client(client, ChatMessage(message="hello"), ChatCall(key_kind=SERVER), backend)
    assert reply.message


def test_a_stream_over_a_limit_ends_in_an_error_event_with_retry_after(backend: Backend) -> None:
    client = _client(backend, turns_per_day=0)

    events = list(chat_stream(client, {"message": "hello"}, ChatCall(end_user="u"), backend))

    assert len(events) == 1 and events[0]["type"] == "error"
    assert events[0]["code"] == "rate_limited" and events[0]["retry_after"] > 0 and events[0]["message"]


def test_a_finished_stream_counts_its_tokens(backend: Backend) -> None:
    client = _client(backend, **OPEN, tokens_per_day=1)

    events = list(chat_stream(client, {"message": "hello"}, ChatCall(end_user="u"), backend))
    refused = list(chat_stream(client, {"message": "hello"}, ChatCall(end_user="u"), backend))

    assert events[-1]["type"] == "turn.finished" and events[-1]["usage"]["total_tokens"] > 1
    assert refused[-1]["code"] == "rate_limited"


@pytest.fixture
def shared_store(tmp_path: Path) -> Iterator[Backend]:
    """A backend on the embedded store's process: what several processes (or threads) share."""
    with installed_backend(Settings(memory_store=tmp_path / "store.json")) as started:
        yield started


def test_n_concurrent_turns_against_a_limit_of_l_admit_exactly_l(shared_store: Backend) -> None:
    client = _client(shared_store, **OPEN, turns_per_day=7)

    def one(_: int) -> bool:
        try:
            admit(client, "u", None, shared_store.stores.counters, NOW)
        except RateLimitedError:
            return False
        return True

    with ThreadPoolExecutor(max_workers=12) as pool:
        results = list(pool.map(one, range(24)))

    assert results.count(True) == 7


def test_a_reset_naming_a_busy_session_starts_a_new_one_and_is_not_held_up_by_it(backend: Backend) -> None:
    client = _client(backend, **{**OPEN, "session_concurrency": 1})
    busy = admit(client, "u", "01KBUSYSESSION0000000000000", backend.stores.counters)  # now, as the turn

    reply, _ = chat_as_client(client, ChatMessage(reset=True, session_id="01KBUSYSESSION0000000000000"),
                              ChatCall(end_user="u"), backend)

    assert reply.session_id != "01KBUSYSESSION0000000000000"
    backend.stores.counters.count(busy.counts(None))


def test_concurrent_turns_of_one_session_admit_its_concurrency_and_a_commit_frees_the_slot(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    with FakeOpenAI() as model, installed_backend(Settings(
            memory_store=tmp_path / "store.json", openai_base_url=model.base_url, openai_api_key=TEST_KEY)) as backend:
        model.always(Reply("fine", delay=0.5))  # every turn holds its slot half a second
        client = _client(backend, **{**OPEN, "session_concurrency": 1})
        profile = AgentConfig.get("acme", "default")
        profile.model = "openai:gpt-test"
        profile.save()
        call = ChatCall(end_user="u")
        session = chat_as_client(client, ChatMessage(reset=True), call, backend)[0].session_id

        def one(_: int) -> int:
            try:
                chat_as_client(client, ChatMessage(session_id=session, message="hi"), call, backend)
            except RateLimitedError as exc:
                return exc.retry_after
            return 0

        with ThreadPoolExecutor(max_workers=6) as pool:
            results = list(pool.map(one, range(6)))

        assert sorted(results) == [0, 1, 1, 1, 1, 1]  # one ran; the others were told to retry in 1 s
        assert one(0) == 0  # its commit freed the slot: the next turn runs
        assert ChatSession.get("acme", session).turn_count == 2
