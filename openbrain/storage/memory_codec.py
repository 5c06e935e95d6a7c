"""How a session's memory is stored: versioned, compressed JSON of langchain messages.

    zlib( {"v": 1, "messages": messages_to_dict(messages)} as compact UTF-8 JSON )

Never pickle: unpickling what a table holds is code execution for whoever can write it. Reading anything
but this format (another version, a pickle, garbage) raises `StoredDataError`.

A message is kept as the dict `messages_to_dict` makes of it (a `Record`); the chat turn works on records
and converts to langchain messages only what the model sees (`conversation/memory.py` holds that policy).
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from typing import Any

from langchain_core.messages import BaseMessage, messages_from_dict, messages_to_dict

from openbrain.core.errors import StoredDataError

SCHEMA_VERSION = 1
SUPPORTED_VERSIONS = frozenset({1})

Record = dict[str, Any]  # one message as `messages_to_dict` makes it: {"type": ..., "data": {...}}


def dump_record(record: Record) -> str:
    """One record as the JSON fragment the stored document holds."""
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False)


def _compress(document: str) -> bytes:
    return zlib.compress(document.encode(), 6)


def pack(fragments: Sequence[str]) -> bytes:
    """The stored bytes of records already dumped (`dump_record`), oldest first."""
    return _compress(f'{{"v":{SCHEMA_VERSION},"messages":[{",".join(fragments)}]}}')


def pack_records(records: Sequence[Record]) -> bytes:
    """The same bytes as `pack(map(dump_record, records))`, in one `json.dumps`."""
    return _compress(json.dumps({"v": SCHEMA_VERSION, "messages": list(records)}, separators=(",", ":"),
                                ensure_ascii=False))


def dumps(messages: Sequence[BaseMessage]) -> bytes:
    """Messages -> the stored bytes."""
    return pack([dump_record(d) for d in messages_to_dict(list(messages))])


def load_records(blob: bytes | None) -> list[Record]:
    """Stored bytes -> the stored message dicts, checked for shape only (`to_messages` checks each message).
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


def to_messages(records: Sequence[Record]) -> list[BaseMessage]:
    """Stored message dicts -> messages. Raises `StoredDataError` for a message langchain cannot rebuild."""
    try:
        return messages_from_dict(list(records))
    except (KeyError, TypeError, ValueError) as exc:
        raise StoredDataError(f"session memory holds an unknown message: {exc}") from exc


def loads(blob: bytes | None) -> list[BaseMessage]:
    """Stored bytes -> messages. Raises `StoredDataError` for anything that is not a known format."""
    return to_messages(load_records(blob))
