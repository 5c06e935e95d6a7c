"""A session's memory: versioned, compressed JSON of langchain messages, and the policy that bounds it.

Stored format (never pickle: unpickling what a table holds is code execution for whoever can write it):

    zlib( {"v": 1, "messages": messages_to_dict(messages)} as compact UTF-8 JSON )

Two bounds come from the AgentConfig's `MemoryPolicy`:
- `window()`: what the model sees each turn, the latest whole turns within a message and token budget;
- `compact()`: what is stored, the latest whole turns within a message count and a compressed byte
  budget, so no session ever reaches DynamoDB's 400 KB item limit whatever its length or message sizes.
Both cut only at turn boundaries (before a human message), so a tool result never loses its tool call.

The chat turn works on the stored message dicts (`load_records`, `window_of_records`, `compact_records`):
only the window the model sees becomes langchain messages, and the history is re-serialised in one
`json.dumps` (each message separately only on a turn that trims), so a turn's cost does not grow with
the hundreds of messages a session may keep (docs/benchmarks.md).
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from typing import Any

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    ToolMessage,
    messages_from_dict,
    messages_to_dict,
)
from langchain_core.messages.utils import count_tokens_approximately

from openbrain.core.errors import StoredDataError
from openbrain.domain.profile import MemoryPolicy

SCHEMA_VERSION = 1
SUPPORTED_VERSIONS = frozenset({1})
TRUNCATION_MARK = " …[truncated to fit the session's memory budget]"
MIN_TRUNCATED_CHARS = 200
TRIM_TO = 0.8  # when a budget is exceeded, trim to this fraction of it


Record = dict[str, Any]  # one message as `messages_to_dict` makes it: {"type": ..., "data": {...}}


def _dump(record: Record) -> str:
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False)


def _fragments(messages: Sequence[BaseMessage]) -> list[str]:
    return [_dump(d) for d in messages_to_dict(list(messages))]


def _compress(document: str) -> bytes:
    return zlib.compress(document.encode(), 6)


def _pack(fragments: Sequence[str]) -> bytes:
    return _compress(f'{{"v":{SCHEMA_VERSION},"messages":[{",".join(fragments)}]}}')


def _pack_records(records: Sequence[Record]) -> bytes:
    """The same bytes as `_pack(map(_dump, records))`, in one `json.dumps`."""
    return _compress(json.dumps({"v": SCHEMA_VERSION, "messages": list(records)}, separators=(",", ":"),
                                ensure_ascii=False))


def dumps(messages: Sequence[BaseMessage]) -> bytes:
    """Messages -> the stored bytes."""
    return _pack(_fragments(messages))


def load_records(blob: bytes | None) -> list[Record]:
    """Stored bytes -> the stored message dicts, checked for shape only (`loads` checks every message).
    Raises `StoredDataError` for anything that is not a known format."""
    if not blob:
        return []
    try:
        document = json.loads(zlib.decompress(blob))
    except (zlib.error, ValueError) as exc:
        raise StoredDataError("session memory is not compressed JSON; refusing to load it") from exc
    version = document.get("v") if isinstance(document, dict) else None
    if type(version) is not int or version not in SUPPORTED_VERSIONS:
        raise StoredDataError(f"session memory has unknown schema version {version!r}")
    raw = document.get("messages")
    if not isinstance(raw, list):
        raise StoredDataError("session memory holds no message list")
    for record in raw:
        if not (isinstance(record, dict) and isinstance(record.get("type"), str)
                and isinstance(record.get("data"), dict)):
            raise StoredDataError("session memory holds an unknown message")
    return raw


def _messages(records: Sequence[Record]) -> list[BaseMessage]:
    try:
        return messages_from_dict(list(records))
    except (KeyError, TypeError, ValueError) as exc:
        raise StoredDataError(f"session memory holds an unknown message: {exc}") from exc


def loads(blob: bytes | None) -> list[BaseMessage]:
    """Stored bytes -> messages. Raises `StoredDataError` for anything that is not a known format."""
    return _messages(load_records(blob))


def _turn_starts(messages: Sequence[BaseMessage]) -> list[int]:
    """Indices where a suffix may start: 0 and every human message."""
    return [0] + [i for i, m in enumerate(messages) if i and isinstance(m, HumanMessage)]


def _record_turn_starts(records: Sequence[Record]) -> list[int]:
    return [0] + [i for i, r in enumerate(records) if i and r["type"] == "human"]


def window(history: Sequence[BaseMessage], policy: MemoryPolicy) -> list[BaseMessage]:
    """The latest whole turns of `history` within the policy's message and token budget."""
    max_messages = int(policy.window_messages)
    max_tokens = int(policy.window_tokens) or None
    tokens_from: dict[int, int] = {}
    if max_tokens:
        total = 0
        for i in range(len(history) - 1, -1, -1):
            total += count_tokens_approximately([history[i]])
            tokens_from[i] = total
    for start in _turn_starts(history):
        if len(history) - start > max_messages:
            continue
        if max_tokens and tokens_from.get(start, 0) > max_tokens:
            continue
        return list(history[start:])
    return []


def window_of_records(records: Sequence[Record], policy: MemoryPolicy) -> list[BaseMessage]:
    """`window(loads(...), policy)`, converting only the stored messages the window can hold."""
    cut = max(0, len(records) - int(policy.window_messages))
    if cut == 0:
        return window(_messages(records), policy)
    # Inside the tail a suffix may start only at a human message (its first message is not the history's).
    first = next((i for i in range(cut, len(records)) if records[i]["type"] == "human"), None)
    return [] if first is None else window(_messages(records[first:]), policy)


class Compacted:
    """What `compact` keeps: the stored bytes, how many of the oldest messages it dropped, and (made on
    first use when compacting records) the kept messages."""

    def __init__(self, blob: bytes, dropped: int, messages: list[BaseMessage] | None = None,
                 records: Sequence[Record] = ()) -> None:
        self.blob = blob
        self.dropped = dropped
        self._messages = messages
        self._records = records

    @property
    def messages(self) -> list[BaseMessage]:
        if self._messages is None:
            self._messages = _messages(self._records)
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


def _plan(records: Sequence[Record], policy: MemoryPolicy, max_bytes: int | None) -> tuple[int, bytes | None]:
    """Where the stored suffix starts, and its bytes; None bytes when even the latest turn is over budget."""
    max_messages = int(policy.max_stored_messages)
    budget = _budget(policy, max_bytes)
    starts = _record_turn_starts(records)
    if len(records) > max_messages:
        keep = max(2, int(max_messages * TRIM_TO))
        starts = [s for s in starts if len(records) - s <= keep] or [starts[-1]]
    blob = _pack_records(records[starts[0]:])
    if len(blob) <= budget:
        return starts[0], blob
    # Over the byte budget: the longest suffix (starts go longest to shortest) within TRIM_TO of it.
    fragments = [_dump(record) for record in records]
    target = int(budget * TRIM_TO)
    best: tuple[int, bytes] | None = None
    low, high = 1, len(starts) - 1
    while low <= high:
        mid = (low + high) // 2
        mid_blob = _pack(fragments[starts[mid]:])
        if len(mid_blob) <= target:
            best, high = (starts[mid], mid_blob), mid - 1
        else:
            low = mid + 1
    return best if best is not None else (starts[-1], None)


def _budget(policy: MemoryPolicy, max_bytes: int | None) -> int:
    return min(int(policy.max_stored_bytes), max_bytes or int(policy.max_stored_bytes))


def compact(messages: Sequence[BaseMessage], policy: MemoryPolicy, max_bytes: int | None = None) -> Compacted:
    """Drop the oldest whole turns until the policy's stored-message and byte budgets hold.

    `max_bytes` lowers the policy's byte budget (the chat turn passes what the rest of the session item
    leaves). When a budget is exceeded, turns are dropped down to `TRIM_TO` of it, so a long session
    trims once every many turns rather than on every turn. If the latest turn alone is over the budget its
    texts are truncated, marked as such: a turn is never refused for its size.
    """
    start, blob = _plan(messages_to_dict(list(messages)), policy, max_bytes)
    if blob is not None:
        return Compacted(blob, start, list(messages[start:]))
    kept, blob = _shrink_turn(list(messages[start:]), _budget(policy, max_bytes))
    return Compacted(blob, start, kept)


def compact_records(records: Sequence[Record], policy: MemoryPolicy, max_bytes: int | None = None) -> Compacted:
    """`compact` on stored message dicts (`load_records` plus `messages_to_dict` of a turn's new messages)."""
    start, blob = _plan(records, policy, max_bytes)
    if blob is not None:
        return Compacted(blob, start, records=records[start:])
    kept, blob = _shrink_turn(_messages(records[start:]), _budget(policy, max_bytes))
    return Compacted(blob, start, kept)
