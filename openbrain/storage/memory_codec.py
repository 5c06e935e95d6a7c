"""How a session's memory is stored: versioned, chunked, compressed JSON of langchain messages.

Format 2 (written since issue 10), every integer big-endian:

    b"OBM" · version (1 byte: 2) · chunk count n (4 bytes)
    · n times (compressed length (4 bytes), message count (4 bytes))
    · the n chunks, each zlib( JSON array of records, compact UTF-8 )

A chunk holds whole turns, oldest first. Only the last chunk is open: a turn's messages go into it until it
holds `CHUNK_BYTES` of JSON, and the next turn then starts a new one. A sealed chunk is never rewritten, so a
turn decompresses and recompresses only the open chunk (and the chunks its window reaches), whatever the length
of the stored history; compaction drops whole chunks from the front, rewriting only the chunk a cut falls in.
A 16 KB chunk costs about a fifth of a 32 KB one to compress, for about 6% more stored bytes.

Format 1 (written until issue 10): zlib( {"v": 1, "messages": [records]} as compact UTF-8 JSON ). It is still
read, as chunks made afresh from its records, so the next save of a session writes it as format 2: the
migration happens on read, one session at a time, with no batch job.

Never pickle: unpickling what a table holds is code execution for whoever can write it. Reading anything
but these formats (another version, a pickle, garbage, a chunk that disagrees with its header) raises
`StoredDataError`, when the chunk is read: `load` checks the header, and a chunk's contents when they are used.

A message is kept as the dict `messages_to_dict` makes of it (a `Record`); the chat turn works on records
and converts to langchain messages only what the model sees (`conversation/memory.py` holds that policy).
"""

from __future__ import annotations

import json
import struct
import zlib
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from itertools import accumulate
from typing import Any, overload

from langchain_core.messages import BaseMessage, messages_from_dict, messages_to_dict

from openbrain.core.errors import StoredDataError

SCHEMA_VERSION = 2
MAGIC = b"OBM"
CHUNK_BYTES = 16_384  # a chunk is sealed once it holds this much JSON

Record = dict[str, Any]  # one message as `messages_to_dict` makes it: {"type": ..., "data": {...}}

_HEADER = struct.Struct(">3sBI")  # magic, version, chunk count
_ENTRY = struct.Struct(">II")  # a chunk's compressed length and message count


def _dump(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _check(records: Any) -> list[Record]:
    if not isinstance(records, list):
        raise StoredDataError("session memory holds no message list")
    for record in records:
        if not (isinstance(record, dict) and isinstance(record.get("type"), str)
                and isinstance(record.get("data"), dict)):
            raise StoredDataError("session memory holds an unknown message")
    return records


class Chunk:
    """Whole turns of records: their JSON array and its zlib bytes, each made from the other on first use."""

    __slots__ = ("_blob", "_raw", "_records", "count")

    def __init__(self, count: int, *, blob: bytes | None = None, raw: bytes | None = None,
                 records: list[Record] | None = None) -> None:
        self.count = count
        self._blob = blob
        self._raw = raw
        self._records = records

    @classmethod
    def of_records(cls, records: list[Record]) -> Chunk:
        return cls(len(records), records=records)

    @property
    def blob(self) -> bytes:
        """The stored bytes: zlib of the JSON array."""
        if self._blob is None:
            self._blob = zlib.compress(self.raw, 6)
        return self._blob

    @property
    def raw(self) -> bytes:
        """The JSON array of the records, compact UTF-8."""
        if self._raw is None:
            if self._records is not None:
                self._raw = _dump(self._records)
            else:
                try:
                    self._raw = zlib.decompress(self.blob)
                except zlib.error as exc:
                    raise StoredDataError("session memory holds a chunk that is not compressed") from exc
        return self._raw

    def records(self) -> list[Record]:
        """The records, checked for shape only (`to_messages` checks each message)."""
        if self._records is None:
            try:
                records = json.loads(self.raw)
            except ValueError as exc:
                raise StoredDataError("session memory holds a chunk that is not JSON") from exc
            if len(_check(records)) != self.count:
                raise StoredDataError("session memory holds a chunk whose messages do not match its header")
            self._records = records
        return self._records

    def extended(self, fragments: Sequence[bytes]) -> Chunk:
        """This chunk with the records of `fragments` (each a record's JSON) after its own."""
        if not fragments:
            return self
        raw = self.raw
        return Chunk(self.count + len(fragments),
                     raw=raw[:-1] + (b"," if self.count else b"") + b",".join(fragments) + b"]")


class StoredMemory(Sequence[Record]):
    """A session's stored records, oldest first, in chunks: reading decompresses only the chunks indexed,
    `extended` rewrites only the open (last) chunk, and `to_bytes` keeps every other chunk byte for byte."""

    def __init__(self, chunks: Sequence[Chunk] = ()) -> None:
        self.chunks = tuple(chunks)
        self._ends = list(accumulate(chunk.count for chunk in self.chunks))

    @classmethod
    def of_records(cls, records: Sequence[Record]) -> StoredMemory:
        """Records packed afresh into chunks (the same chunks a session that stored them turn by turn has)."""
        return cls().extended(records)

    def __len__(self) -> int:
        return self._ends[-1] if self._ends else 0

    def __iter__(self) -> Iterator[Record]:
        for chunk in self.chunks:
            yield from chunk.records()

    @overload
    def __getitem__(self, index: int) -> Record: ...

    @overload
    def __getitem__(self, index: slice) -> list[Record]: ...

    def __getitem__(self, index: int | slice) -> Record | list[Record]:
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            return self._span(start, stop) if step == 1 else self._span(0, len(self))[index]
        position = index + len(self) if index < 0 else index
        if not 0 <= position < len(self):
            raise IndexError("stored memory index out of range")
        return self._span(position, position + 1)[0]

    def _span(self, start: int, stop: int) -> list[Record]:
        """Records [start, stop), decompressing only the chunks that hold them."""
        if start >= stop:
            return []
        first = bisect_right(self._ends, start)
        records: list[Record] = []
        for chunk in self.chunks[first:bisect_right(self._ends, stop - 1) + 1]:
            records += chunk.records()
        offset = self._ends[first - 1] if first else 0
        return records[start - offset:stop - offset]

    def extended(self, records: Sequence[Record]) -> StoredMemory:
        """These records after the stored ones: added to the open chunk, which is sealed when it holds
        `CHUNK_BYTES` of JSON and the next turn (a human message) begins."""
        chunks = list(self.chunks)
        current = chunks.pop() if chunks else Chunk(0, raw=b"[]")
        size = len(current.raw)
        fragments: list[bytes] = []
        for record in records:
            fragment = _dump(record)
            if record["type"] == "human" and size >= CHUNK_BYTES:
                chunks.append(current.extended(fragments))
                current, size, fragments = Chunk(0, raw=b"[]"), 2, []
            fragments.append(fragment)
            size += len(fragment) + 1
        current = current.extended(fragments)
        return StoredMemory([*chunks, current] if current.count else chunks)

    def stored_size(self) -> int:
        """len(self.to_bytes()), compressing only chunks not yet compressed."""
        return _HEADER.size + _ENTRY.size * len(self.chunks) + sum(len(chunk.blob) for chunk in self.chunks)

    def to_bytes(self) -> bytes:
        """The stored bytes, format 2."""
        return b"".join([
            _HEADER.pack(MAGIC, SCHEMA_VERSION, len(self.chunks)),
            *(_ENTRY.pack(len(chunk.blob), chunk.count) for chunk in self.chunks),
            *(chunk.blob for chunk in self.chunks),
        ])


def _load_chunked(blob: bytes) -> StoredMemory:
    if len(blob) < _HEADER.size:
        raise StoredDataError("session memory has a truncated header")
    _, version, count = _HEADER.unpack_from(blob)
    if version != SCHEMA_VERSION:
        raise StoredDataError(f"session memory has unknown schema version {version!r}")
    offset = _HEADER.size + _ENTRY.size * count
    if len(blob) < offset:
        raise StoredDataError("session memory has a truncated header")
    chunks = []
    for length, messages in _ENTRY.iter_unpack(blob[_HEADER.size:offset]):
        if not messages:
            raise StoredDataError("session memory holds an empty chunk")
        chunks.append(Chunk(messages, blob=blob[offset:offset + length]))
        offset += length
    if offset != len(blob):
        raise StoredDataError("session memory's chunks do not match its header")
    return StoredMemory(chunks)


def _load_v1(blob: bytes) -> list[Record]:
    try:
        document = json.loads(zlib.decompress(blob))
    except (zlib.error, ValueError) as exc:
        raise StoredDataError("session memory is not compressed JSON; refusing to load it") from exc
    version = document.get("v") if isinstance(document, dict) else None
    if type(version) is not int or version != 1:
        raise StoredDataError(f"session memory has unknown schema version {version!r}")
    return _check(document.get("messages"))


def load(blob: bytes | None) -> StoredMemory:
    """Stored bytes -> the stored records, read lazily (format 1 is read whole, into chunks made afresh).
    Raises `StoredDataError` for anything that is not a known format."""
    if not blob:
        return StoredMemory()
    if blob.startswith(MAGIC):
        return _load_chunked(blob)
    return StoredMemory.of_records(_load_v1(blob))


def load_records(blob: bytes | None) -> list[Record]:
    """Stored bytes -> every stored message dict, checked for shape only (`to_messages` checks each message).
    Raises `StoredDataError` for anything that is not a known format."""
    return list(load(blob))


def dumps(messages: Sequence[BaseMessage]) -> bytes:
    """Messages -> the stored bytes."""
    return StoredMemory.of_records(messages_to_dict(list(messages))).to_bytes()


def to_messages(records: Sequence[Record]) -> list[BaseMessage]:
    """Stored message dicts -> messages. Raises `StoredDataError` for a message langchain cannot rebuild."""
    try:
        return messages_from_dict(list(records))
    except (KeyError, TypeError, ValueError) as exc:
        raise StoredDataError(f"session memory holds an unknown message: {exc}") from exc


def loads(blob: bytes | None) -> list[BaseMessage]:
    """Stored bytes -> messages. Raises `StoredDataError` for anything that is not a known format."""
    return to_messages(load_records(blob))
