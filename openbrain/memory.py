"""A session's memory: versioned, compressed JSON of langchain messages, and the policy that bounds it.

Stored format (never pickle: unpickling what a table holds is code execution for whoever can write it):

    zlib( {"v": 1, "messages": messages_to_dict(messages)} as compact UTF-8 JSON )

Two bounds come from the AgentConfig's `MemoryPolicy`:
- `window()`: what the model sees each turn, the latest whole turns within a message and token budget;
- `compact()`: what is stored, the latest whole turns within a message count and a compressed byte
  budget, so no session ever reaches DynamoDB's 400 KB item limit whatever its length or message sizes.
Both cut only at turn boundaries (before a human message), so a tool result never loses its tool call.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

from langchain_core.messages import BaseMessage, HumanMessage, messages_from_dict, messages_to_dict
from langchain_core.messages.utils import count_tokens_approximately

from openbrain.errors import StoredDataError
from openbrain.orm.agent_config import MemoryPolicy

SCHEMA_VERSION = 1
SUPPORTED_VERSIONS = frozenset({1})
TRUNCATION_MARK = " …[truncated to fit the session's memory budget]"


def dumps(messages: Sequence[BaseMessage]) -> bytes:
    """Messages -> the stored bytes."""
    document = {"v": SCHEMA_VERSION, "messages": messages_to_dict(list(messages))}
    return zlib.compress(json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode(), 6)


def loads(blob: bytes | None) -> list[BaseMessage]:
    """Stored bytes -> messages. Raises `StoredDataError` for anything that is not a known format."""
    if not blob:
        return []
    try:
        document = json.loads(zlib.decompress(blob))
    except (zlib.error, ValueError) as exc:
        raise StoredDataError("session memory is not compressed JSON; refusing to load it") from exc
    if not isinstance(document, dict) or document.get("v") not in SUPPORTED_VERSIONS:
        version = document.get("v") if isinstance(document, dict) else None
        raise StoredDataError(f"session memory has unknown schema version {version!r}")
    raw = document.get("messages")
    if not isinstance(raw, list):
        raise StoredDataError("session memory holds no message list")
    try:
        return messages_from_dict(raw)
    except (KeyError, TypeError, ValueError) as exc:
        raise StoredDataError(f"session memory holds an unknown message: {exc}") from exc


def _turn_starts(messages: Sequence[BaseMessage]) -> list[int]:
    """Indices where a suffix may start: 0 and every human message."""
    return [0] + [i for i, m in enumerate(messages) if i and isinstance(m, HumanMessage)]


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


@dataclass
class Compacted:
    messages: list[BaseMessage]
    blob: bytes
    dropped: int


def _truncate(message: BaseMessage, max_chars: int) -> BaseMessage:
    if isinstance(message.content, str) and len(message.content) > max_chars:
        return message.model_copy(update={"content": message.content[:max_chars] + TRUNCATION_MARK})
    return message


def compact(messages: Sequence[BaseMessage], policy: MemoryPolicy) -> Compacted:
    """Drop the oldest whole turns until the policy's stored-message and byte budgets hold.

    If the latest turn alone is over the byte budget, its longest texts are truncated (marked as such):
    a turn is never refused for its size.
    """
    max_messages = int(policy.max_stored_messages)
    max_bytes = int(policy.max_stored_bytes)
    starts = _turn_starts(messages)
    candidates = [s for s in starts if len(messages) - s <= max_messages] or [starts[-1]]
    # Candidates go from the longest suffix to the shortest; find the longest one that fits.
    low, high = 0, len(candidates) - 1
    blob = dumps(messages[candidates[low]:])
    if len(blob) <= max_bytes:
        return Compacted(list(messages[candidates[low]:]), blob, candidates[low])
    best: tuple[int, bytes] | None = None
    while low <= high:
        mid = (low + high) // 2
        mid_blob = dumps(messages[candidates[mid]:])
        if len(mid_blob) <= max_bytes:
            best, high = (mid, mid_blob), mid - 1
        else:
            low = mid + 1
    if best is not None:
        start = candidates[best[0]]
        return Compacted(list(messages[start:]), best[1], start)
    # The latest turn alone does not fit: truncate its texts until it does.
    start = candidates[-1]
    kept = list(messages[start:])
    budget = max(500, max_bytes // max(1, len(kept)))
    while True:
        kept = [_truncate(m, budget) for m in kept]
        blob = dumps(kept)
        if len(blob) <= max_bytes or budget <= 500:
            return Compacted(kept, blob, start)
        budget //= 2
