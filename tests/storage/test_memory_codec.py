"""The memory codec (openbrain/storage/memory_codec.py): the stored format of a session's memory.

Versioned, zlib-compressed JSON of langchain messages; anything else (another version, a pickle, garbage) is
refused with `StoredDataError` and never unpickled.
"""

from __future__ import annotations

import json
import pickle
import zlib
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage, messages_to_dict

from openbrain.core.errors import StoredDataError
from openbrain.storage.memory_codec import SCHEMA_VERSION, dumps, load_records, loads

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


def test_the_stored_format_is_versioned_zlib_compressed_json() -> None:
    document = json.loads(zlib.decompress(dumps(EVERY_KIND)))

    assert document["v"] == SCHEMA_VERSION == 1
    assert [m["type"] for m in document["messages"]] == ["system", "ai", "human", "ai", "tool", "tool", "ai"]


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


@pytest.mark.parametrize("blob", NOT_MEMORY.values(), ids=NOT_MEMORY.keys())
def test_loads_refuses_anything_but_the_known_format(blob: bytes) -> None:
    with pytest.raises(StoredDataError):
        loads(blob)


def test_loads_names_an_unknown_version() -> None:
    with pytest.raises(StoredDataError, match="unknown schema version 99"):
        loads(zjson({"v": 99, "messages": []}))


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
                    "messages missing", "message without data", "message not an object")


@pytest.mark.parametrize("name", STRUCTURALLY_BAD)
def test_load_records_refuses_what_is_not_the_stored_format(name: str) -> None:
    with pytest.raises(StoredDataError):
        load_records(NOT_MEMORY[name])


def test_load_records_are_the_dicts_loads_makes_messages_of() -> None:
    blob = dumps(EVERY_KIND)

    assert load_records(blob) == messages_to_dict(EVERY_KIND)
    assert load_records(None) == load_records(b"") == []
