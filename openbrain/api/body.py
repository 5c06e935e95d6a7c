"""Reading a request body (or a WebSocket frame) as JSON within the API's limits: `bounded_json`, shared by the
HTTP API (`app.py`, Powertools' body deserializer) and the streaming transports (`streaming.py`, `websocket.py`),
which import it from here so that the WebSocket Lambda does not load the HTTP API's resolver and routes."""

from __future__ import annotations

import json
from typing import Any

from openbrain.aws.backend import get_backend
from openbrain.core.errors import InvalidInputError

from .routes.errors import PayloadTooLargeError

MAX_DEPTH = 32  # objects and arrays nested in a body; ours nest 3 deep, tool context a few more
MAX_NUMBER_CHARS = 1_000  # characters of one JSON number (Python refuses integers of over 4,300 digits)


def bounded_json(body: str) -> Any:
    """json.loads, refusing bodies over `OB_MAX_BODY_BYTES` before parsing them, and anything a store or a
    model cannot take after: nesting deeper than `MAX_DEPTH`, numbers too long to parse, NaN/Infinity, and
    strings that are not Unicode text (lone surrogates, which `\\ud800` escapes make). Each is
    `InvalidInputError` naming where it is, never an error of the database or a crash."""
    limit = get_backend().settings.max_body_bytes
    size = len(body) if body.isascii() else len(body.encode())
    if size > limit:
        raise PayloadTooLargeError(f"the request body is {size} bytes; the limit is {limit} (OB_MAX_BODY_BYTES)")
    try:
        value = json.loads(body, parse_constant=_no_constants, parse_int=_bounded_int, parse_float=_bounded_float)
    except RecursionError as exc:
        raise InvalidInputError(f"the body nests deeper than {MAX_DEPTH} levels") from exc
    _check_text(value)
    return value


def json_object(body: str) -> dict[str, Any]:
    """`bounded_json` of a body that must be a JSON object: every body of the HTTP API is one. Checked here
    because Powertools' validation takes a non-empty array's first element for a body model (the long fuzz run
    had `POST /chat` answer `[{"message": "hi"}]`)."""
    value = bounded_json(body)
    if not isinstance(value, dict):
        raise InvalidInputError(f"body: must be a JSON object, not {type(value).__name__}")
    return value


def _no_constants(name: str) -> Any:
    """NaN and Infinity are not JSON (Python's parser accepts them); refuse them as bad input."""
    raise InvalidInputError(f"{name} is not a JSON number")


def _short_number(text: str) -> str:
    if len(text) > MAX_NUMBER_CHARS:
        raise InvalidInputError(f"a number in the body has {len(text)} characters; at most {MAX_NUMBER_CHARS}")
    return text


def _bounded_int(text: str) -> int:
    return int(_short_number(text))


def _bounded_float(text: str) -> float:
    return float(_short_number(text))


def _check_text(value: Any) -> None:
    """Walk the parsed body (iteratively: its depth is what is being checked) for depth and bad strings."""
    pending: list[tuple[Any, str, int]] = [(value, "body", 0)]
    while pending:
        item, where, depth = pending.pop()
        if isinstance(item, str):
            if not item.isascii():
                try:
                    item.encode()
                except UnicodeEncodeError:
                    raise InvalidInputError(f"{where}: not valid Unicode text (a lone surrogate)") from None
            continue
        if isinstance(item, (dict, list)):
            if depth >= MAX_DEPTH:
                raise InvalidInputError(f"the body nests deeper than {MAX_DEPTH} levels")
            pairs = item.items() if isinstance(item, dict) else enumerate(item)
            for key, child in pairs:
                if isinstance(key, str):
                    pending.append((key, f"{where} (a key)", depth))
                pending.append((child, f"{where}.{key}", depth + 1))
