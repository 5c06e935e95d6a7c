"""The memory codec (openbrain/storage/memory_codec.py): the stored format of a session's memory.

Versioned, chunked, zlib-compressed JSON of langchain messages (format 2); format 1 (one zlib stream of
JSON) is still read and migrates on the next save; anything else (another version, a pickle, garbage, a
chunk that disagrees with its header) is refused with `StoredDataError` and never unpickled.
"""

from __future__ import annotations

import base64
import json
import pickle
import struct
import zlib
from typing import Any

import pytest
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    messages_to_dict,
)

from openbrain.core.errors import StoredDataError
from openbrain.storage.memory_codec import (
    CHUNK_BYTES,
    MAGIC,
    SCHEMA_VERSION,
    Chunk,
    StoredMemory,
    dumps,
    load,
    load_records,
    loads,
)

# --- messages: dumps and loads ----------------------------------------------------------------------------

EVERY_KIND = [
    SystemMessage("You are terse."),
    AIMessage("Hi! How can I help?"),
    HumanMessage("What is 2 + 2? Café ☕ — 日本語"),
    AIMessage(
        "",
        tool_calls=[{"name": "calculator", "args": {"expression": "2 + 2"}, "id": "call_1", "type": "tool_call"},
                    {"name": "get_current_time", "args": {"timezone": "Asia/Tokyo"}, "id": "call_2",
                     "type": "tool_call"}],
        response_metadata={"model_name": "offline", "offline": True},
    ),
    ToolMessage("4", tool_call_id="call_1", name="calculator"),
    ToolMessage("2030-01-01T09:00:00+09:00", tool_call_id="call_2", name="get_current_time"),
    AIMessage("2 + 2 = 4, and it is 9 am in Tokyo."),
]


def test_dumps_then_loads_returns_equal_messages_of_every_kind() -> None:
    restored = loads(dumps(EVERY_KIND))

    assert restored == EVERY_KIND
    assert [type(m) for m in restored] == [type(m) for m in EVERY_KIND]
    call, result = restored[3], restored[4]
    assert isinstance(call, AIMessage) and call.tool_calls == [
        {"name": "calculator", "args": {"expression": "2 + 2"}, "id": "call_1", "type": "tool_call"},
        {"name": "get_current_time", "args": {"timezone": "Asia/Tokyo"}, "id": "call_2", "type": "tool_call"},
    ]
    assert isinstance(result, ToolMessage) and (result.tool_call_id, result.name) == ("call_1", "calculator")


def chunks_of(blob: bytes) -> list[tuple[int, list[Any]]]:
    """Format 2 read by hand: each chunk's message count (from the header) and its decompressed JSON."""
    magic, version, count = struct.unpack_from(">3sBI", blob)
    assert (magic, version) == (b"OBM", 2)
    entries = list(struct.iter_unpack(">II", blob[8:8 + 8 * count]))
    offset, chunks = 8 + 8 * count, []
    for length, messages in entries:
        chunks.append((messages, json.loads(zlib.decompress(blob[offset:offset + length]))))
        offset += length
    assert offset == len(blob)
    return chunks


def test_the_stored_format_is_versioned_chunks_of_zlib_compressed_json() -> None:
    chunks = chunks_of(dumps(EVERY_KIND))

    assert (MAGIC, SCHEMA_VERSION) == (b"OBM", 2)
    assert [(count, [m["type"] for m in records]) for count, records in chunks] == [
        (7, ["system", "ai", "human", "ai", "tool", "tool", "ai"])
    ]
    assert chunks_of(dumps([])) == []


def turns(n: int, chars: int = 1000) -> list[BaseMessage]:
    history: list[BaseMessage] = [AIMessage("Hi! How can I help?")]
    for i in range(n):
        history += [HumanMessage(f"question {i} " + "q" * chars), AIMessage(f"answer {i} " + "a" * chars)]
    return history


def test_a_chunk_holds_whole_turns_and_is_sealed_once_it_holds_chunk_bytes_of_json() -> None:
    # given 100 turns of about 2.2 KB of JSON each
    history = turns(100)

    # when
    chunks = chunks_of(dumps(history))

    # then: every chunk starts a turn; every chunk but the last reached CHUNK_BYTES before the next turn
    assert len(chunks) > 3
    assert sum(count for count, _ in chunks) == len(history)
    assert [records[0]["type"] for _, records in chunks[1:]] == ["human"] * (len(chunks) - 1)
    for _, records in chunks[:-1]:
        size = len(json.dumps(records, separators=(",", ":")))
        assert CHUNK_BYTES <= size < CHUNK_BYTES + 2 * 1100 + 400


@pytest.mark.parametrize("blob", [None, b""])
def test_loads_of_no_memory_is_an_empty_history(blob: bytes | None) -> None:
    assert loads(blob) == []


def zjson(document: Any) -> bytes:
    return zlib.compress(json.dumps(document).encode())


NOT_MEMORY = {
    "garbage bytes": b"\x00\xffthis is not zlib at all",
    "zlib of non-json": zlib.compress(b"<html>not json</html>"),
    "zlib of invalid utf-8": zlib.compress(b"\xff\xfe\xfd"),
    "json without v": zjson({"messages": []}),
    "json list": zjson([{"type": "human", "data": {"content": "hi"}}]),
    "unknown version 99": zjson({"v": 99, "messages": []}),
    "version as text": zjson({"v": "1", "messages": []}),
    "version true": zjson({"v": True, "messages": []}),
    "messages not a list": zjson({"v": 1, "messages": {"type": "human", "data": {"content": "hi"}}}),
    "messages missing": zjson({"v": 1}),
    "unknown message type": zjson({"v": 1, "messages": [{"type": "evil", "data": {"content": "x"}}]}),
    "message without data": zjson({"v": 1, "messages": [{"type": "human"}]}),
    "message not an object": zjson({"v": 1, "messages": [42]}),
    "message with bad fields": zjson({"v": 1, "messages": [{"type": "tool", "data": {"content": "x"}}]}),
}


def chunked(*chunks: tuple[bytes, int], version: int = 2, extra: bytes = b"") -> bytes:
    """Format 2 made by hand: (zlib bytes, message count in the header) per chunk."""
    return (struct.pack(">3sBI", b"OBM", version, len(chunks))
            + b"".join(struct.pack(">II", len(data), count) for data, count in chunks)
            + b"".join(data for data, _ in chunks) + extra)


HI = {"type": "human", "data": {"content": "hi"}}
NOT_MEMORY |= {
    "v2 unknown version 9": chunked((zjson([HI]), 1), version=9),
    "v2 truncated header": b"OBM\x02\x00",
    "v2 header naming more chunks than it holds": chunked((zjson([HI]), 1))[:12],
    "v2 chunk longer than the blob": chunked((zjson([HI]), 1))[:-3],
    "v2 bytes after the last chunk": chunked((zjson([HI]), 1), extra=b"x"),
    "v2 chunk not zlib": chunked((b"not zlib at all", 1)),
    "v2 chunk of non-json": chunked((zlib.compress(b"<html>"), 1)),
    "v2 chunk not a list": chunked((zjson({"messages": [HI]}), 1)),
    "v2 chunk with more messages than its header says": chunked((zjson([HI, HI]), 1)),
    "v2 empty chunk": chunked((zjson([]), 0)),
    "v2 message not an object": chunked((zjson([42]), 1)),
    "v2 unknown message type": chunked((zjson([{"type": "evil", "data": {"content": "x"}}]), 1)),
}


@pytest.mark.parametrize("blob", NOT_MEMORY.values(), ids=NOT_MEMORY.keys())
def test_loads_refuses_anything_but_the_known_format(blob: bytes) -> None:
    with pytest.raises(StoredDataError):
        loads(blob)


def test_loads_names_an_unknown_version() -> None:
    with pytest.raises(StoredDataError, match="unknown schema version 99"):
        loads(zjson({"v": 99, "messages": []}))
    with pytest.raises(StoredDataError, match="unknown schema version 9"):
        loads(NOT_MEMORY["v2 unknown version 9"])


UNPICKLED: list[str] = []


def _record_unpickling() -> str:
    UNPICKLED.append("code ran")
    return "pwned"


class Tripwire:
    """Unpickling this runs `_record_unpickling`: proof that nothing unpickled it."""

    def __reduce__(self) -> tuple[Any, tuple[()]]:
        return _record_unpickling, ()


@pytest.mark.parametrize("compressed", [False, True], ids=["raw", "zlib"])
@pytest.mark.parametrize("protocol", [0, pickle.DEFAULT_PROTOCOL, pickle.HIGHEST_PROTOCOL])
def test_loads_refuses_a_pickle_and_never_unpickles_it(protocol: int, compressed: bool) -> None:
    # given a pickled list, as an older store (or an attacker) might have written it
    payload = pickle.dumps([HumanMessage("hi"), Tripwire()], protocol=protocol)
    blob = zlib.compress(payload) if compressed else payload
    UNPICKLED.clear()

    # when / then
    with pytest.raises(StoredDataError):
        loads(blob)
    assert UNPICKLED == []


# --- records: the stored message dicts the chat turn works on ---------------------------------------------

STRUCTURALLY_BAD = ("garbage bytes", "zlib of non-json", "zlib of invalid utf-8", "json without v", "json list",
                    "unknown version 99", "version as text", "version true", "messages not a list",
                    "messages missing", "message without data", "message not an object",
                    *(name for name in NOT_MEMORY if name.startswith("v2 ") and name != "v2 unknown message type"))


@pytest.mark.parametrize("name", STRUCTURALLY_BAD)
def test_load_records_refuses_what_is_not_the_stored_format(name: str) -> None:
    with pytest.raises(StoredDataError):
        load_records(NOT_MEMORY[name])


def test_load_records_are_the_dicts_loads_makes_messages_of() -> None:
    blob = dumps(EVERY_KIND)

    assert load_records(blob) == messages_to_dict(EVERY_KIND)
    assert load_records(None) == load_records(b"") == []


# --- format 2: chunks, read lazily, extended without rewriting sealed chunks -----------------------------


def test_stored_memory_is_the_sequence_of_the_stored_records() -> None:
    history = messages_to_dict(turns(60))
    stored = load(dumps(turns(60)))

    assert len(stored.chunks) > 2
    assert len(stored) == len(history) and list(stored) == history
    for index in (0, 1, 40, -1, -41, len(history) - 1):
        assert stored[index] == history[index]
    for part in (slice(0, 3), slice(-45, None), slice(30, 90), slice(5, 5), slice(None, None, 7), slice(200, 400)):
        assert stored[part] == history[part]
    with pytest.raises(IndexError):
        stored[len(history)]


def test_reading_the_latest_records_decompresses_only_the_chunks_that_hold_them() -> None:
    # given a stored history whose first chunk is corrupt (the header still says how long it is)
    stored = load(dumps(turns(60)))
    first = stored.chunks[0]
    corrupt = StoredMemory([Chunk(first.count, blob=b"\x00" * len(first.blob)), *stored.chunks[1:]])
    blob = corrupt.to_bytes()

    # then: the latest messages read, and reading the corrupt chunk is refused
    assert load(blob)[-10:] == messages_to_dict(turns(60))[-10:]
    with pytest.raises(StoredDataError):
        load_records(blob)


@pytest.mark.parametrize("n", range(50, 66))
def test_extending_rewrites_only_the_open_chunk_and_keeps_sealed_chunks_byte_for_byte(n: int) -> None:
    # given a stored history of several chunks (the open one, the last, more or less full)
    stored = load(dumps(turns(n)))
    new_turn = messages_to_dict([HumanMessage("one more"), AIMessage("sure")])

    # when
    extended = load(stored.extended(new_turn).to_bytes())

    # then: the sealed chunks are the same bytes; the turn went into the open chunk, or into a new one if
    # the open one was full (which is then sealed as it was stored)
    sealed = len(stored.chunks) - 1
    assert [c.blob for c in extended.chunks[:sealed]] == [c.blob for c in stored.chunks[:sealed]]
    if len(stored.chunks[-1].raw) < CHUNK_BYTES:
        assert len(extended.chunks) == len(stored.chunks)
        assert extended.chunks[-1].records() == stored.chunks[-1].records() + new_turn
    else:
        assert [c.blob for c in extended.chunks[:-1]] == [c.blob for c in stored.chunks]
        assert extended.chunks[-1].records() == new_turn
    assert list(extended) == messages_to_dict(turns(n)) + new_turn


def test_a_history_stored_turn_by_turn_is_the_history_packed_at_once() -> None:
    history = turns(80)
    blob = dumps(history[:1])

    for start in range(1, len(history), 2):
        blob = load(blob).extended(messages_to_dict(history[start:start + 2])).to_bytes()

    assert blob == dumps(history)
    assert len(load(blob).chunks) > 3


# --- format 1: read through format 2, written back as format 2 -------------------------------------------

V1_MESSAGES = [
    AIMessage("Hi! How can I help?"),
    HumanMessage("what is 6 * 7? Café ☕"),
    AIMessage("", tool_calls=[{"name": "calculator", "args": {"expression": "6 * 7"}, "id": "call_1",
                               "type": "tool_call"}]),
    ToolMessage("42", tool_call_id="call_1", name="calculator"),
    AIMessage("6 * 7 = 42"),
]
# `memory_codec.dumps(V1_MESSAGES)` as the format-1 codec (before issue 10) stored it, pinned byte for byte
V1_BLOB = base64.b64decode(
    "eJy1U1FKxDAUvEp8n9KfFVEoyH74s55BlvBIs9tgmpTmZauUHEPwCp7Dm3gSk922VKkglf0Lk8nMm3mkgwPkqwwq6RzupYP8sQN6qSXkgAoyKJAQ"
    "8g6ENSQNRXijLtjGtkygYQ+slLpeRx4WhSJlDWr+1GKzj0pdyKCRrrbGSV5Jwl4rwlMHg1U8G691BqoYTmSt5gK1TiNt4405oFYF/4n7NPZEPb0O"
    "IRtDlL5CM5ujLZGYcuyGXbLbNbvH3cc7+3x7XRpmcJrLM53ol1rP3WHXkyACwmsk2yTLkwvI5zrauGgeGcdGIJykEl/zFYyGoyqEf+wl8Wd7uL5a"
    "2kQvORdzphP+PRw2pHYoaOA5QvLRFpwXIjYDf1jhsTd2x5ZHONuH2IYvvB9Wsw=="
)


def test_a_v1_blob_is_the_format_the_codec_wrote_before_chunks() -> None:
    document = json.loads(zlib.decompress(V1_BLOB))

    assert document == {"v": 1, "messages": messages_to_dict(V1_MESSAGES)}


def test_a_v1_blob_reads_back_through_v2() -> None:
    assert loads(V1_BLOB) == V1_MESSAGES
    assert load_records(V1_BLOB) == messages_to_dict(V1_MESSAGES)
    stored = load(V1_BLOB)
    assert (len(stored), stored[-2:]) == (5, messages_to_dict(V1_MESSAGES[-2:]))


def test_a_v1_blob_is_written_back_as_v2_holding_the_same_messages() -> None:
    # given a v1 session memory, read through v2
    stored = load(V1_BLOB)
    new_turn = messages_to_dict([HumanMessage("thanks"), AIMessage("You're welcome.")])

    # when the next turn stores it
    written = stored.extended(new_turn).to_bytes()

    # then it is format 2, the very bytes v2 stores for those messages, and format 1 is gone
    assert written.startswith(MAGIC) and not V1_BLOB.startswith(MAGIC)
    assert written == dumps([*V1_MESSAGES, HumanMessage("thanks"), AIMessage("You're welcome.")])
    assert load_records(written) == messages_to_dict(V1_MESSAGES) + new_turn
