"""A session's memory policy: what the model sees each turn, and what is stored.

The stored format is `openbrain.storage.memory_codec`'s; this module works on its records (the stored
message dicts), read through a `StoredMemory`: only the chunks that hold the window the model sees are
decompressed, only that window becomes langchain messages, and a turn's messages go into the open chunk,
the only one recompressed (a trim also rewrites the chunk its cut falls in): a turn's cost does not grow
with the hundreds of messages a session may keep (docs/benchmarks.md).

Two bounds come from the AgentConfig's `MemoryPolicy`:
- `window()`: what the model sees each turn, the latest whole turns within a message and token budget;
- `compact()`: what is stored, the latest whole turns within a message count and a compressed byte
  budget, so no session ever reaches DynamoDB's 400 KB item limit whatever its length or message sizes.
Both cut only at turn boundaries (before a human message), so a tool result never loses its tool call.
`remember()` is the chat turn's use of `compact()`: a turn's new messages into the session item.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage, messages_to_dict
from langchain_core.messages.utils import count_tokens_approximately

from openbrain.domain.profile import MemoryPolicy
from openbrain.storage.memory_codec import Chunk, Record, StoredMemory, dumps, to_messages

if TYPE_CHECKING:
    from openbrain.storage.orm.chat_session import ChatSession

TRUNCATION_MARK = " …[truncated to fit the session's memory budget]"
MIN_TRUNCATED_CHARS = 200
TRIM_TO = 0.8  # when a budget is exceeded, trim to this fraction of it


def window(records: Sequence[Record], policy: MemoryPolicy) -> list[BaseMessage]:
    """The latest whole turns of the stored `records` within the policy's message and token budget, as
    messages; only the stored messages the message budget admits are read (a `StoredMemory` decompresses
    only the chunks that hold them) and converted."""
    max_messages = int(policy.window_messages)
    max_tokens = int(policy.window_tokens) or None
    first = max(0, len(records) - max_messages)
    candidates = records[first:]
    starts = [i for i, r in enumerate(candidates) if r["type"] == "human" or first + i == 0]
    if not starts:
        return []
    origin = starts[0]
    tail = to_messages(candidates[origin:])
    if max_tokens:
        tokens_from = [0] * (len(tail) + 1)  # tokens of tail[i:]
        for i in range(len(tail) - 1, -1, -1):
            tokens_from[i] = tokens_from[i + 1] + count_tokens_approximately([tail[i]])
        starts = [s for s in starts if tokens_from[s - origin] <= max_tokens]
    return tail[starts[0] - origin:] if starts else []


class Compacted:
    """What `compact` keeps: the stored bytes, how many of the oldest messages it dropped, and (made on
    first use unless a turn was truncated) the kept messages."""

    def __init__(self, blob: bytes, dropped: int, messages: list[BaseMessage] | None = None,
                 records: Sequence[Record] = ()) -> None:
        self.blob = blob
        self.dropped = dropped
        self._messages = messages
        self._records = records

    @property
    def messages(self) -> list[BaseMessage]:
        if self._messages is None:
            self._messages = to_messages(self._records)
        return self._messages


def _cut(text: str, max_chars: int) -> str:
    return text[:max_chars] + TRUNCATION_MARK if len(text) > max_chars else text


def _truncate(message: BaseMessage, max_chars: int) -> BaseMessage:
    """The message with every text in it (content, tool-call arguments) cut to `max_chars`."""
    update: dict[str, Any] = {}
    if isinstance(message.content, str) and len(message.content) > max_chars:
        update["content"] = _cut(message.content, max_chars)
    if isinstance(message, AIMessage) and message.tool_calls:
        update["tool_calls"] = [
            {**call, "args": {k: _cut(v, max_chars) if isinstance(v, str) else v for k, v in call["args"].items()}}
            for call in message.tool_calls
        ]
        # Providers' raw copies of the calls would keep the full arguments.
        update["additional_kwargs"] = {k: v for k, v in message.additional_kwargs.items() if k != "tool_calls"}
    return message.model_copy(update=update) if update else message


def _shrink_turn(turn: list[BaseMessage], max_bytes: int) -> tuple[list[BaseMessage], bytes]:
    """Fit one turn into `max_bytes`: cut its texts, and as a last resort keep only the person's message
    and the final reply (a tool call is only ever dropped together with its result)."""
    budget = max_bytes // max(1, len(turn))
    while budget >= MIN_TRUNCATED_CHARS:
        kept = [_truncate(m, budget) for m in turn]
        blob = dumps(kept)
        if len(blob) <= max_bytes:
            return kept, blob
        budget //= 2
    ends = [turn[0]] + ([turn[-1]] if len(turn) > 1 else [])
    core = [m for m in ends if not (isinstance(m, AIMessage) and m.tool_calls) and not isinstance(m, ToolMessage)]
    chars = max_bytes // 8
    while True:
        kept = [_truncate(m, chars) for m in core]
        blob = dumps(kept)
        if len(blob) <= max_bytes or chars <= 1:
            return kept, blob
        chars //= 2


def _longest_suffix(stored: StoredMemory, fits: Callable[[StoredMemory], bool]) -> StoredMemory | None:
    """The longest whole-turn suffix of `stored` that `fits` (which must hold for every suffix of one it holds
    for), or None if not even the latest turn fits. Whole chunks go first; only the chunk the cut falls in is
    read and rewritten (a chunk starts a turn, so the cut is at one of its human messages)."""
    chunks = stored.chunks
    keep = next((j for j in range(len(chunks)) if fits(StoredMemory(chunks[j:]))), len(chunks))
    if keep == 0:
        return stored
    rest = chunks[keep:]
    records = chunks[keep - 1].records()
    starts = [i for i, record in enumerate(records) if i and record["type"] == "human"]
    best = None
    low, high = 0, len(starts) - 1
    while low <= high:  # the earliest start in the chunk whose suffix fits
        mid = (low + high) // 2
        candidate = StoredMemory([Chunk.of_records(records[starts[mid]:]), *rest])
        if fits(candidate):
            best, high = candidate, mid - 1
        else:
            low = mid + 1
    return best if best is not None else StoredMemory(rest) if rest else None


def _latest_turn(stored: StoredMemory) -> list[Record]:
    records = stored.chunks[-1].records()
    return records[max([i for i, record in enumerate(records) if record["type"] == "human"], default=0):]


def compact(records: Sequence[Record], policy: MemoryPolicy, max_bytes: int | None = None) -> Compacted:
    """Drop the oldest whole turns of the stored `records` until the policy's stored-message and byte
    budgets hold.

    `records` is a `StoredMemory` (the chat turn's: its chunks are kept byte for byte where nothing is cut)
    or a list (packed afresh). `max_bytes` lowers the policy's byte budget (the chat turn passes what the
    rest of the session item leaves). When a budget is exceeded, turns are dropped down to `TRIM_TO` of it,
    so a long session trims once every many turns rather than on every turn. If the latest turn alone is
    over the budget its texts are truncated, marked as such: a turn is never refused for its size.
    """
    stored = records if isinstance(records, StoredMemory) else StoredMemory.of_records(records)
    budget = min(int(policy.max_stored_bytes), max_bytes or int(policy.max_stored_bytes))
    max_messages = int(policy.max_stored_messages)
    kept = stored
    if len(stored) > max_messages:
        keep = max(2, int(max_messages * TRIM_TO))
        kept = _longest_suffix(stored, lambda suffix: len(suffix) <= keep) or StoredMemory.of_records(
            _latest_turn(stored))
    target = int(budget * TRIM_TO)
    fitted = kept if kept.stored_size() <= budget else _longest_suffix(
        kept, lambda suffix: suffix.stored_size() <= target)
    if fitted is not None:
        return Compacted(fitted.to_bytes(), len(stored) - len(fitted), records=fitted)
    turn = _latest_turn(stored)
    messages, blob = _shrink_turn(to_messages(turn), budget)
    return Compacted(blob, len(stored) - len(turn), messages)


def remember(session: ChatSession, history: StoredMemory, new_messages: Sequence[BaseMessage],
             policy: MemoryPolicy) -> None:
    """Store a turn: `session.memory` becomes `history` (its stored records) with `new_messages` added,
    compacted to the policy and to what the rest of the item leaves; dropped messages are counted in
    `session.trimmed_messages`. The session is not saved."""
    compacted = compact(history.extended(messages_to_dict(list(new_messages))), policy,
                        max_bytes=session.memory_budget(int(policy.max_stored_bytes)))
    session.memory = compacted.blob
    session.trimmed_messages = int(session.trimmed_messages) + compacted.dropped
