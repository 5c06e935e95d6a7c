"""DynamoDB item sizes by the documented rules, independent of moto, and a moto that enforces them.

Rules (DynamoDB developer guide, "Item sizes and formats"): an item's size is the sum over its
attributes of the UTF-8 length of the name plus the value's size, where
- a string is its UTF-8 length; a binary value its raw length (not its base64 form);
- a number is about 1 byte per two significant digits (leading and trailing zeros trimmed) plus 1 byte;
- a boolean or null is 1 byte;
- a list or map is 3 bytes plus, per element, 1 byte plus the element's size (and, in a map, the
  UTF-8 length of the element's name); a set is the sum of its elements' sizes.
An item may weigh at most 400 KB = 409,600 bytes, names included.

moto 5.2 counts differently (`moto.dynamodb.models.dynamo_type`): numbers as their decimal string,
lists and maps without their overhead, and it refuses items over 405,000 bytes. `install_documented_limit`
replaces its check with the rules above, and keeps a record of every write that stock moto would have
refused, so a benchmark can report both turns.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

MAX_ITEM_BYTES = 400 * 1024
MOTO_MAX_ITEM_BYTES = 405_000  # the literal in moto 5.2's LimitedSizeDict


def number_size(text: str) -> int:
    """Bytes of a DynamoDB number given as its string form ("-12.50", "1E+3")."""
    mantissa = text.strip().lstrip("+-").lower().split("e")[0].replace(".", "")
    digits = mantissa.strip("0") or "0"
    return math.ceil(len(digits) / 2) + 1


def _binary_size(value: bytes | bytearray | str) -> int:
    return len(base64.b64decode(value)) if isinstance(value, str) else len(value)


def value_size(value: Any) -> int:
    """Size of one attribute value, in DynamoDB's wire form ({"S": "..."}) or as a moto DynamoType."""
    if hasattr(value, "type") and hasattr(value, "value"):  # moto's DynamoType
        kind, inner = value.type, value.value
    else:
        ((kind, inner),) = value.items()
    if kind == "S":
        return len(inner.encode())
    if kind == "N":
        return number_size(str(inner))
    if kind == "B":
        return _binary_size(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode()) for s in inner)
    if kind == "NS":
        return sum(number_size(str(n)) for n in inner)
    if kind == "BS":
        return sum(_binary_size(b) for b in inner)
    if kind == "L":
        return 3 + sum(1 + value_size(element) for element in inner)
    if kind == "M":
        return 3 + sum(1 + len(name.encode()) + value_size(element) for name, element in inner.items())
    raise ValueError(f"unknown DynamoDB type {kind!r}")


def item_size(item: Mapping[str, Any]) -> int:
    """Size of an item (attribute name -> value) by the documented rules."""
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def moto_item_size(item: Mapping[str, Any]) -> int:
    """Size of a wire-form item by moto 5.2's own accounting (what its 405,000-byte check adds up)."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    return sum(len(name.encode()) + DynamoType(value).size() for name, value in item.items())


@dataclass
class Refusals:
    """Writes the patched moto saw: how many it refused, and which stock moto would have refused."""

    documented: int = 0
    stock: int = 0
    largest_documented: int = 0
    largest_stock: int = 0
    sizes: list[tuple[int, int]] = field(default_factory=list)  # (documented, stock) of refused writes

    def reset(self) -> None:
        self.documented = self.stock = self.largest_documented = self.largest_stock = 0
        self.sizes.clear()


REFUSALS = Refusals()


@contextmanager
def documented_limit() -> Iterator[Refusals]:
    """Within the block, moto refuses an item when the documented rules put it over 409,600 bytes (not
    when its own accounting passes 405,000); writes stock moto would have refused are counted too."""
    from moto.dynamodb.exceptions import ItemSizeTooLarge
    from moto.dynamodb.models import dynamo_type

    limited = dynamo_type.LimitedSizeDict
    original = limited.__setitem__

    def setitem(self: dict[str, Any], key: str, value: Any) -> None:
        candidate = {**self, key: value}
        documented = item_size(candidate)
        stock = sum(len(name.encode()) + (element.size() if hasattr(element, "size") else len(str(element).encode()))
                    for name, element in candidate.items())
        REFUSALS.largest_documented = max(REFUSALS.largest_documented, documented)
        REFUSALS.largest_stock = max(REFUSALS.largest_stock, stock)
        if stock > MOTO_MAX_ITEM_BYTES:
            REFUSALS.stock += 1
        if documented > MAX_ITEM_BYTES:
            REFUSALS.documented += 1
            REFUSALS.sizes.append((documented, stock))
            raise ItemSizeTooLarge
        dict.__setitem__(self, key, value)

    limited.__setitem__ = setitem  # type: ignore[method-assign]
    try:
        yield REFUSALS
    finally:
        limited.__setitem__ = original  # type: ignore[method-assign]


def self_check() -> list[tuple[str, int, int]]:
    """(what, documented bytes, moto's bytes) for sample items: where moto's accounting and the rules differ."""
    message = {"M": {"type": {"S": "human"}, "data": {"M": {"content": {"S": "x" * 200}, "id": {"NULL": True}}}}}
    samples: list[tuple[str, dict[str, Any]]] = [
        ("string 'ab' named 'k'", {"k": {"S": "ab"}}),
        ("number 1234500 named 'n'", {"n": {"N": "1234500"}}),
        ("binary of 300,000 bytes named 'b'", {"b": {"B": b"\0" * 300_000}}),
        ("bool and null", {"t": {"BOOL": True}, "z": {"NULL": True}}),
        ("list of 1,000 messages (maps)", {"History": {"L": [message] * 1000}}),
    ]
    return [(what, item_size(item), moto_item_size(item)) for what, item in samples]
