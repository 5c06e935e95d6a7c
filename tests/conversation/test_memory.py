"""Session memory policy (openbrain/conversation/memory.py): the model's window and the storage bound, on the
stored message dicts (records) the chat turn holds; the stored format itself is tests/storage/test_memory_codec.py.

The last tests drive a session for many turns, through `memory.compact` alone and through the real chat
turn with the offline model, and check that every stored item stays far from DynamoDB's 400 KB limit.
"""

from __future__ import annotations

import itertools
import json
import random
import string
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage, messages_to_dict
from langchain_core.messages.utils import count_tokens_approximately

from openbrain.aws.backend import Backend
from openbrain.conversation.chat import ChatMessage, chat
from openbrain.conversation.memory import TRIM_TO, TRUNCATION_MARK, compact, window
from openbrain.core.errors import StoredDataError
from openbrain.core.settings import Settings
from openbrain.domain.profile import MemoryPolicy
from openbrain.storage.memory_codec import MAGIC, dumps, load, load_records, loads
from openbrain.storage.orm import ChatSession

ITEM_SIZE_CEILING = 350_000  # bytes; DynamoDB refuses items over 400 KB
MESSAGE_CHARS = 4096


@pytest.fixture
def settings() -> Settings:
    """The conftest settings, with the message limit stated rather than assumed (4 KB messages must pass)."""
    return Settings(backend="memory", memory_store=None, max_message_chars=8_000)


# --- building conversations -------------------------------------------------------------------------------


def noise(rng: random.Random, chars: int) -> str:
    """Text zlib cannot shrink much: random six-letter words (none is a word the offline model acts on)."""
    words = (chars + 6) // 7
    return " ".join("".join(rng.choices(string.ascii_letters, k=6)) for _ in range(words))[:chars]


def tool_turn(n: int) -> list[BaseMessage]:
    call_id = f"call_{n:024d}"
    return [
        HumanMessage(f"what is {n} * 3"),
        AIMessage("", tool_calls=[{"name": "calculator", "args": {"expression": f"{n} * 3"}, "id": call_id,
                                   "type": "tool_call"}]),
        ToolMessage(str(n * 3), tool_call_id=call_id, name="calculator"),
        AIMessage(f"{n} * 3 = {n * 3}"),
    ]


def script(turns: int, seed: int = 7) -> Iterator[list[BaseMessage]]:
    """A fixed conversation: short exchanges, 4 KB exchanges and tool-call turns, in a repeating pattern."""
    rng = random.Random(seed)
    pool = [noise(rng, MESSAGE_CHARS) for _ in range(64)]  # reused far apart: zlib's window is 32 KB
    for n in range(turns):
        kind = n % 5
        if kind == 0:
            yield [HumanMessage(f"hi, turn {n}"), AIMessage(f"hello again ({n})")]
        elif kind in (1, 3):
            yield [HumanMessage(pool[n % 64]), AIMessage(pool[(7 * n + 3) % 64])]
        elif kind == 2:
            yield tool_turn(n)
        else:
            yield [HumanMessage(f"short {n}"), AIMessage(pool[n % 64][:300])]


def conversation(turns: int, seed: int = 7) -> list[BaseMessage]:
    history: list[BaseMessage] = [AIMessage("Hi! How can I help?")]  # the icebreaker opens every session
    for turn in script(turns, seed):
        history.extend(turn)
    return history


def starts_a_turn(history: list[BaseMessage], kept: list[BaseMessage]) -> bool:
    """`kept` is a suffix of `history` that starts at a human message or is the whole history."""
    if not kept:
        return True
    return history[len(history) - len(kept):] == kept and (
        isinstance(kept[0], HumanMessage) or len(kept) == len(history)
    )


def calls_answered(messages: list[BaseMessage]) -> bool:
    """Every tool result follows the AI message that asked for it, and every call kept has its result."""
    asked: set[str] = set()
    answered: set[str] = set()
    for message in messages:
        if isinstance(message, AIMessage):
            asked |= {str(call["id"]) for call in message.tool_calls}
        elif isinstance(message, ToolMessage):
            if message.tool_call_id not in asked:
                return False
            answered.add(message.tool_call_id)
    return asked == answered


def turn_starts(history: list[BaseMessage]) -> list[int]:
    return [0] + [i for i, m in enumerate(history) if i and isinstance(m, HumanMessage)]


# --- window: what the model sees ------------------------------------------------------------------------


def test_window_is_the_whole_history_when_it_fits() -> None:
    history = conversation(3)

    assert window(messages_to_dict(history), MemoryPolicy(window_messages=100, window_tokens=0)) == history


def test_window_keeps_at_most_window_messages_starting_at_a_human_message() -> None:
    # given 1 icebreaker + 20 two-message turns
    history: list[BaseMessage] = [AIMessage("icebreaker")]
    for n in range(20):
        history += [HumanMessage(f"question {n}"), AIMessage(f"answer {n}")]

    # when
    seen = window(messages_to_dict(history), MemoryPolicy(window_messages=7, window_tokens=0))

    # then: the latest three whole turns (7 would start on an AI message)
    assert seen == history[-6:]
    assert isinstance(seen[0], HumanMessage)


def test_window_keeps_within_window_tokens() -> None:
    # given turns of about 100 tokens per message
    history: list[BaseMessage] = [AIMessage("icebreaker")]
    for n in range(20):
        history += [HumanMessage(f"q{n} " + "word " * 80), AIMessage(f"a{n} " + "word " * 80)]
    policy = MemoryPolicy(window_messages=40, window_tokens=500)

    # when
    seen = window(messages_to_dict(history), policy)

    # then
    assert 0 < count_tokens_approximately(seen) <= 500
    assert starts_a_turn(history, seen)
    assert count_tokens_approximately(history[-len(seen) - 2:]) > 500  # one more turn would not fit


def test_window_tokens_zero_means_no_token_bound() -> None:
    history: list[BaseMessage] = [HumanMessage("x " * 50_000), AIMessage("y " * 50_000)]

    assert window(messages_to_dict(history), MemoryPolicy(window_messages=10, window_tokens=0)) == history


def test_window_never_starts_inside_a_tool_call_turn() -> None:
    # given a history ending in a four-message tool-call turn
    history: list[BaseMessage] = [AIMessage("icebreaker"), HumanMessage("hi"), AIMessage("hello"), *tool_turn(1)]

    # then: every message budget gives whole turns only
    expected = {1: [], 2: [], 3: [], 4: history[3:], 5: history[3:], 6: history[1:], 7: history}
    for budget, kept in expected.items():
        assert window(messages_to_dict(history), MemoryPolicy(window_messages=budget, window_tokens=0)) == kept, budget


def test_window_is_the_longest_whole_turn_suffix_within_both_budgets() -> None:
    # given a mixed history (short, 4 KB and tool-call turns)
    history = conversation(40)
    starts = turn_starts(history)

    for window_messages in (1, 2, 3, 5, 8, 13, 40, 1000):
        for window_tokens in (0, 50, 1000, 2500, 8000, 1_000_000):
            policy = MemoryPolicy(window_messages=window_messages, window_tokens=window_tokens,
                                  max_stored_messages=10_000)  # a window may not exceed what is stored

            # when
            seen = window(messages_to_dict(history), policy)

            # then: within budget, whole turns, and no longer whole-turn suffix would fit
            assert starts_a_turn(history, seen)
            assert len(seen) <= window_messages
            assert not window_tokens or count_tokens_approximately(seen) <= window_tokens
            longer = [s for s in starts if s < len(history) - len(seen)]
            if longer:
                bigger = history[longer[-1]:]
                assert len(bigger) > window_messages or (
                    window_tokens and count_tokens_approximately(bigger) > window_tokens
                )


# --- compact: what is stored ----------------------------------------------------------------------------


def test_compact_keeps_everything_when_within_budget() -> None:
    history = conversation(5)

    result = compact(messages_to_dict(history), MemoryPolicy())

    assert (result.messages, result.dropped) == (history, 0)
    assert result.blob == dumps(history)


def test_compact_drops_oldest_whole_turns_to_respect_max_stored_messages() -> None:
    # given 1 icebreaker + 30 two-message turns
    history: list[BaseMessage] = [AIMessage("icebreaker")]
    for n in range(30):
        history += [HumanMessage(f"question {n}"), AIMessage(f"answer {n}")]

    # when
    result = compact(messages_to_dict(history), MemoryPolicy(window_messages=5, max_stored_messages=11))

    # then: trimmed to TRIM_TO of the bound (8 of 11 messages), i.e. the latest four whole turns, so the
    # next turns do not trim again; and the count of dropped ones
    assert result.messages == history[-8:]
    assert result.dropped == len(history) - 8 == 53
    assert loads(result.blob) == result.messages


def test_compact_drops_oldest_whole_turns_to_respect_max_stored_bytes() -> None:
    # given about 90 KB of hard-to-compress history
    history = conversation(30)
    assert len(dumps(history)) > 50_000
    policy = MemoryPolicy(max_stored_bytes=20_000)

    # when
    result = compact(messages_to_dict(history), policy)

    # then: within TRIM_TO of the budget (room for the next turns), whole turns, reported, and the longest
    # suffix that fits that target
    assert len(result.blob) <= 20_000 * TRIM_TO
    assert starts_a_turn(history, result.messages)
    assert result.dropped == len(history) - len(result.messages) > 0
    assert loads(result.blob) == result.messages
    previous_start = max(s for s in turn_starts(history) if s < result.dropped)
    assert len(dumps(history[previous_start:])) > 20_000 * TRIM_TO


def test_compact_never_splits_a_tool_call_from_its_result() -> None:
    history = conversation(20)

    for max_stored_messages in range(2, len(history) + 1):
        policy = MemoryPolicy(window_messages=2, max_stored_messages=max_stored_messages)
        kept = compact(messages_to_dict(history), policy).messages
        assert starts_a_turn(history, kept), max_stored_messages
        assert calls_answered(kept)
        assert len(kept) <= max_stored_messages


@pytest.mark.parametrize("max_bytes", [12_000, 20_000, 50_000])
def test_compact_honours_a_byte_budget_lower_than_the_policys(max_bytes: int) -> None:
    # The chat turn passes what the rest of the session item leaves for memory.
    history = conversation(40)

    result = compact(messages_to_dict(history), MemoryPolicy(), max_bytes=max_bytes)

    assert len(result.blob) <= max_bytes
    assert starts_a_turn(history, result.messages)
    assert result.dropped > 0


def test_compact_never_exceeds_the_policy_when_given_a_larger_byte_budget() -> None:
    history = conversation(40)
    policy = MemoryPolicy(max_stored_bytes=20_000)

    result = compact(messages_to_dict(history), policy, max_bytes=280_000)

    assert len(result.blob) <= 20_000


def test_compact_truncates_a_single_oversized_message_so_the_blob_fits() -> None:
    # given a 400 KB message (incompressible) after some ordinary turns
    rng = random.Random(1)
    history: list[BaseMessage] = [AIMessage("icebreaker"), HumanMessage("hi"), AIMessage("hello"),
               HumanMessage(noise(rng, 400_000)), AIMessage("That is a lot of text.")]
    policy = MemoryPolicy()

    # when
    result = compact(messages_to_dict(history), policy)

    # then: the oversized turn is kept, truncated and marked; older turns are dropped and counted
    assert len(result.blob) <= policy.max_stored_bytes
    assert result.dropped == 3
    kept_human, kept_ai = result.messages
    assert isinstance(kept_human, HumanMessage) and kept_human.text.endswith(TRUNCATION_MARK)
    assert history[3].text.startswith(kept_human.text.removesuffix(TRUNCATION_MARK))
    assert kept_ai == history[4]
    assert loads(result.blob) == result.messages


def test_compact_truncates_an_oversized_multibyte_message_to_the_smallest_budget() -> None:
    # 400,000 random CJK characters are 1.2 MB of UTF-8 and compress poorly
    rng = random.Random(2)
    text = "".join(chr(rng.randrange(0x4E00, 0x9FFF)) for _ in range(400_000))
    policy = MemoryPolicy(window_messages=2, max_stored_messages=2, max_stored_bytes=10_000)

    result = compact(messages_to_dict([HumanMessage(text), AIMessage("ok")]), policy)

    assert len(result.blob) <= 10_000
    assert result.messages[0].text.endswith(TRUNCATION_MARK)


def test_compact_fits_an_oversized_turn_of_many_tool_calls_in_the_smallest_budget() -> None:
    # given one turn of 25 tool round trips with 1-2 KB texts (about 70 KB compressed)
    rng = random.Random(3)
    turn: list[BaseMessage] = [HumanMessage(noise(rng, 2000))]
    for n in range(25):
        call_id = f"call_{n:024d}"
        turn += [
            AIMessage(noise(rng, 1000), tool_calls=[{"name": "calculator", "args": {"expression": "1 + 1"},
                                                     "id": call_id, "type": "tool_call"}]),
            ToolMessage(noise(rng, 2000), tool_call_id=call_id, name="calculator"),
        ]
    turn.append(AIMessage(noise(rng, 1000)))
    policy = MemoryPolicy(window_messages=20, max_stored_messages=100, max_stored_bytes=10_000)

    # when
    result = compact(messages_to_dict([AIMessage("icebreaker"), *turn]), policy)

    # then: the budget holds whatever the shape of the turn, and no tool result loses its call
    assert len(result.blob) <= 10_000
    assert calls_answered(result.messages)
    assert isinstance(result.messages[0], HumanMessage)
    assert loads(result.blob) == result.messages


def test_compact_fits_an_oversized_turn_whose_bulk_is_tool_call_arguments() -> None:
    # given a model that copied 400 KB of text into a tool call's arguments
    rng = random.Random(4)
    turn = [
        HumanMessage("please save my notes"),
        AIMessage("", tool_calls=[{"name": "capture_lead", "args": {"notes": noise(rng, 400_000)},
                                   "id": "call_1", "type": "tool_call"}]),
        ToolMessage("saved", tool_call_id="call_1", name="capture_lead"),
        AIMessage("Saved."),
    ]
    policy = MemoryPolicy()

    # when
    result = compact(messages_to_dict(turn), policy)

    # then
    assert len(result.blob) <= policy.max_stored_bytes
    assert calls_answered(result.messages)
    assert loads(result.blob) == result.messages


TIGHTEST = MemoryPolicy(window_messages=20, window_tokens=8000, max_stored_messages=40, max_stored_bytes=10_000)
DEFAULT = MemoryPolicy()
LARGEST = MemoryPolicy(window_messages=40, window_tokens=8000, max_stored_messages=10_000, max_stored_bytes=280_000)


def drive_compact(turns: int, policy: MemoryPolicy) -> tuple[int, int]:
    """Run `turns` turns of the fixed script through compact, as the chat turn does; check every result.

    Returns (largest blob, number of turns that dropped messages)."""
    stored: list[BaseMessage] = [AIMessage("Hi! How can I help?")]
    largest = trimmed_turns = 0
    for turn in script(turns):
        history = [*stored, *turn]
        result = compact(messages_to_dict(history), policy)
        assert len(result.blob) <= policy.max_stored_bytes
        assert len(result.messages) <= policy.max_stored_messages
        assert result.messages[-len(turn):] == turn  # the latest turn is always kept whole
        assert result.dropped == len(history) - len(result.messages)
        assert calls_answered(result.messages)
        stored = result.messages
        largest = max(largest, len(result.blob))
        trimmed_turns += result.dropped > 0
    return largest, trimmed_turns


def test_compact_holds_the_byte_bound_over_5000_turns() -> None:
    # The tightest policy, so the byte budget binds again and again (and the test stays fast).
    largest, trimmed_turns = drive_compact(5000, TIGHTEST)

    assert largest <= TIGHTEST.max_stored_bytes
    assert trimmed_turns > 1000  # the budget binds over and over, not once


@pytest.mark.slow
@pytest.mark.parametrize("policy", [DEFAULT, LARGEST], ids=["default-policy", "largest-policy"])
def test_compact_holds_the_byte_bound_over_5000_turns_at_full_size(policy: MemoryPolicy) -> None:
    largest, trimmed_turns = drive_compact(5000, policy)

    assert largest <= policy.max_stored_bytes
    # The budget binds again and again; each trim goes down to TRIM_TO of it, so once every few dozen
    # turns at these sizes (246 and 177 times in 5,000 turns), not on every turn.
    assert trimmed_turns > 100


UNKNOWN_MESSAGES = {
    "unknown message type": {"type": "evil", "data": {"content": "x"}},
    "message with bad fields": {"type": "tool", "data": {"content": "x"}},
}


@pytest.mark.parametrize("record", UNKNOWN_MESSAGES.values(), ids=UNKNOWN_MESSAGES.keys())
def test_the_window_refuses_an_unknown_message_it_would_show(record: dict[str, Any]) -> None:
    with pytest.raises(StoredDataError):
        window([record], MemoryPolicy())


def reference_window(history: list[BaseMessage], policy: MemoryPolicy) -> list[BaseMessage]:
    """What `window` is, on messages: the longest whole-turn suffix within the message budget and (counting
    each message's approximate tokens) the token budget."""
    for start in turn_starts(history):
        suffix = history[start:]
        tokens = sum(count_tokens_approximately([message]) for message in suffix)
        if len(suffix) <= policy.window_messages and (not policy.window_tokens or tokens <= policy.window_tokens):
            return suffix
    return []


def test_the_window_of_the_stored_records_is_the_reference_window_of_the_loaded_messages() -> None:
    history = conversation(40)
    records = load_records(dumps(history))

    for window_messages in (1, 2, 3, 4, 5, 8, 13, 40, 93, 1000):
        for window_tokens in (0, 50, 1000, 2500, 8000):
            policy = MemoryPolicy(window_messages=window_messages, window_tokens=window_tokens,
                                  max_stored_messages=10_000)  # a window may not exceed what is stored
            assert window(records, policy) == reference_window(history, policy), (window_messages, window_tokens)


@pytest.mark.parametrize("turns", [0, 3, 40])
@pytest.mark.parametrize("policy", [MemoryPolicy(), MemoryPolicy(max_stored_bytes=20_000),
                                    MemoryPolicy(window_messages=5, max_stored_messages=11),
                                    MemoryPolicy(window_messages=2, max_stored_messages=2, max_stored_bytes=10_000)],
                         ids=["default", "bytes", "messages", "tightest"])
def test_compact_of_the_stored_records_keeps_a_suffix_of_the_loaded_messages_as_dumps_stores_it(
    turns: int, policy: MemoryPolicy
) -> None:
    history = conversation(turns)

    result = compact(load_records(dumps(history)), policy, max_bytes=30_000)

    # the bytes are those of the messages' own serialisation, byte for byte: the chunks the cut left whole
    # are the history's own, and the chunk it fell in is what dumps makes of the messages kept of it
    kept, whole = load(result.blob).chunks, load(dumps(history)).chunks
    cut = history[result.dropped:result.dropped + kept[0].count]
    assert [c.blob for c in kept] == [c.blob for c in load(dumps(cut)).chunks] + [
        c.blob for c in whole[len(whole) - len(kept) + 1:]]
    assert result.dropped or result.blob == dumps(history)
    assert result.messages == history[result.dropped:]
    assert starts_a_turn(history, result.messages)


def test_compact_of_the_stored_records_truncates_an_oversized_turn_by_cutting_its_text() -> None:
    rng = random.Random(1)
    history: list[BaseMessage] = [AIMessage("icebreaker"), HumanMessage(noise(rng, 400_000)), AIMessage("ok")]

    result = compact(messages_to_dict(history), MemoryPolicy())

    human, ai = result.messages
    kept = human.text.removesuffix(TRUNCATION_MARK)
    assert result.dropped == 1
    assert human.text.endswith(TRUNCATION_MARK)
    assert human == history[1].model_copy(update={"content": history[1].text[:len(kept)] + TRUNCATION_MARK})
    assert ai == history[2]
    assert (result.blob, loads(result.blob)) == (dumps(result.messages), result.messages)


# --- the bound on the real chat turn --------------------------------------------------------------------


def dynamodb_item_size(item: dict[str, Any]) -> int:
    """Bytes an item counts toward DynamoDB's 400 KB limit, by its documented rules: every attribute is the
    UTF-8 length of its name plus the size of its value, where S = UTF-8 length, B = raw length,
    N = 1 byte + 1 per two significant digits, BOOL/NULL = 1, and L/M = 3 + 1 per element + the elements
    (a map's with their names)."""
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def _value_size(value: dict[str, Any]) -> int:
    ((kind, data),) = value.items()
    if kind == "S":
        return len(data.encode())
    if kind == "B":
        return len(data)
    if kind == "N":
        digits = data.lstrip("-").replace(".", "").strip("0") or "0"
        return 1 + (len(digits) + 1) // 2
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(1 + _value_size(v) for v in data)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + _value_size(v) for k, v in data.items())
    raise AssertionError(f"unexpected attribute type {kind}")


def test_dynamodb_item_size_follows_the_documented_rules() -> None:
    item = {"name": {"S": "héllo"}, "b": {"B": b"\x00" * 10}, "n": {"N": "12345"}, "l": {"L": [{"S": "ab"}]},
            "m": {"M": {"k": {"BOOL": True}}}, "z": {"NULL": True}}

    assert dynamodb_item_size(item) == (4 + 6) + (1 + 10) + (1 + 4) + (1 + 3 + 1 + 2) + (1 + 3 + 1 + 1 + 1) + (1 + 1)


def stored_size(backend: Backend, client_id: str, session_id: str) -> int:
    item = backend.client("dynamodb").get_item(
        TableName=ChatSession.Meta.table_name,
        Key={"client_id": {"S": client_id}, "session_id": {"S": session_id}},
        ConsistentRead=True,
    )["Item"]
    return dynamodb_item_size(item)


def user_message(rng: random.Random, n: int, chars: int) -> str:
    """Mostly `chars` of hard-to-compress text; every tenth turn a question the offline model uses a tool for."""
    return f"what is ({n} + 5) * 3" if n % 10 == 9 else noise(rng, chars)


def run_chat(backend: Backend, turns: int, overrides: dict[str, Any], agent_config: str = "default",
             chars: int = MESSAGE_CHARS) -> list[tuple[int, int, int]]:
    """Start a session and run `turns` real chat turns; after each, (item size, memory bytes, trimmed messages).

    The item size is `dynamodb_item_size` of the raw item read back with the low-level client."""
    rng = random.Random(11)
    started = chat(ChatMessage(agent_config=agent_config, agent_config_overrides=overrides), backend)
    sizes = []
    for n in range(turns):
        # Overrides apply when a session starts; later turns run on the session's snapshot.
        reply = chat(ChatMessage(message=user_message(rng, n, chars), session_id=started.session_id), backend)
        assert not reply.ended and reply.stopped is None
        assert reply.tool_calls == (["calculator"] if n % 10 == 9 else [])
        session = ChatSession.get("public", started.session_id)
        sizes.append((stored_size(backend, "public", session.session_id), len(session.memory),
                      int(session.trimmed_messages)))
    return sizes


LARGEST_MEMORY = {"max_stored_bytes": 280_000, "max_stored_messages": 10_000}


@pytest.mark.integration
def test_a_long_chat_keeps_every_session_item_under_350_kb(backend: Backend) -> None:
    # given the largest memory any profile may ask for; 4 KB messages reach its byte budget at about
    # turn 90, and each trim leaves room (TRIM_TO) for about a dozen turns, so 150 turns trim several times
    overrides = {"model": "offline", "memory": LARGEST_MEMORY}

    # when
    sizes = run_chat(backend, 150, overrides)

    # then
    item_sizes = [size for size, _, _ in sizes]
    assert max(item_sizes) < ITEM_SIZE_CEILING
    assert max(memory_bytes for _, memory_bytes, _ in sizes) <= 280_000
    trimmed = [t for _, _, t in sizes]
    trimming_turns = sum(1 for before, after in itertools.pairwise(trimmed) if after > before)
    assert trimming_turns >= 3
    assert max(item_sizes) > 250_000  # the bound was really reached, not just approached


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.parametrize("memory_policy", [{}, LARGEST_MEMORY], ids=["default-policy", "largest-policy"])
def test_a_5000_turn_chat_keeps_every_session_item_under_350_kb(
    backend: Backend, memory_policy: dict[str, int]
) -> None:
    sizes = run_chat(backend, 5000, {"model": "offline", "memory": memory_policy})

    assert max(size for size, _, _ in sizes) < ITEM_SIZE_CEILING
    assert sizes[-1][2] > 0


@pytest.mark.integration
@pytest.mark.parametrize(
    "text",
    ["Answer politely and in detail. " * 700, "日本語で丁寧に答えてください。" * 1400],
    ids=["ascii", "japanese"],
)
def test_a_session_from_a_maximal_valid_profile_stays_under_350_kb(backend: Backend, text: str) -> None:
    # given a profile at every text limit (20,000 characters) with the largest memory budget
    from openbrain.storage.orm import AgentConfig

    AgentConfig(
        "public", "maximal", system_message=text[:20_000], icebreaker=text[:20_000], model="offline",
        memory=MemoryPolicy(**{**MemoryPolicy().model_dump(), **LARGEST_MEMORY}),
    ).save()

    # when it chats (with the longest messages allowed) until its memory is trimmed
    sizes = run_chat(backend, 60, {}, agent_config="maximal", chars=8_000)

    # then
    assert sizes[-1][2] > 0
    assert max(size for size, _, _ in sizes) < ITEM_SIZE_CEILING


# --- format 2 on the chat turn: what a turn rewrites, and the migration of format 1 -----------------------


@pytest.mark.parametrize("max_stored_messages", [50, 150], ids=["message-bound", "byte-bound"])
def test_a_turn_rewrites_only_the_open_chunk_and_the_chunk_a_trim_cuts(max_stored_messages: int) -> None:
    # given a session whose memory trims over 400 turns of the fixed script (by messages, or by bytes)
    from openbrain.conversation.memory import remember

    session = ChatSession("public", config_snapshot={}, context={}, memory=dumps([AIMessage("Hi!")]))
    policy = MemoryPolicy(window_messages=20, max_stored_messages=max_stored_messages, max_stored_bytes=60_000)
    rewritten = []
    for turn in script(400):
        before = load(session.memory)

        # when
        remember(session, before, turn, policy)

        # then: the kept messages are the latest whole turns, within the bounds, and every chunk but the
        # open one and the one a trim cut into is stored as it was, byte for byte
        after = load(session.memory)
        assert list(after) == (list(before) + messages_to_dict(turn))[len(before) + len(turn) - len(after):]
        assert after[0]["type"] == "human" or not session.trimmed_messages
        assert len(after) <= max_stored_messages and len(session.memory) <= 60_000
        old = {chunk.blob for chunk in before.chunks}
        rewritten.append(sum(chunk.blob not in old for chunk in after.chunks))
    assert max(rewritten) <= 2
    assert int(session.trimmed_messages) > 0


@pytest.mark.integration
def test_a_session_stored_in_format_1_continues_and_is_saved_in_format_2(backend: Backend) -> None:
    # given a session whose memory the format-1 codec wrote
    started = chat(ChatMessage(message="my name is Ada Lovelace"), backend)
    session = ChatSession.get("public", started.session_id)
    stored = loads(session.memory)
    session.memory = zlib.compress(json.dumps({"v": 1, "messages": messages_to_dict(stored)},
                                              separators=(",", ":"), ensure_ascii=False).encode(), 6)
    session.save()
    assert not session.memory.startswith(MAGIC)

    # when it takes a turn
    reply = chat(ChatMessage(message="do you remember me?", session_id=started.session_id), backend)

    # then the model saw the format-1 history, and the session is stored in format 2 with every message
    assert "Ada Lovelace" in reply.message
    migrated = ChatSession.get("public", started.session_id).memory
    assert migrated.startswith(MAGIC)
    assert loads(migrated)[:len(stored)] == stored
    assert [m.type for m in loads(migrated)[len(stored):]] == ["human", "ai"]
