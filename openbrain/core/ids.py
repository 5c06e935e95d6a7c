"""Fresh, sortable identifiers (ULIDs) for sessions, leads and events."""

from __future__ import annotations

import re

from ulid import ULID

from openbrain.core.errors import NotFoundError

# Client ids and profile names: 1-64 ASCII letters, digits, '-' or '_' (no '.': client ids are part of
# API keys). Session and lead ids (ULIDs) fit it too, so anything else cannot name a stored item.
NAME_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")


def is_id(value: str | None) -> bool:
    """Whether `value` could be a session id, lead id or profile name."""
    return value is not None and NAME_PATTERN.fullmatch(value) is not None


def existing_id(value: str | None, what: str) -> str:
    """`value` if it could be the id of a stored `what`; otherwise `NotFoundError`, as for a missing one:
    anything else cannot exist, and must not reach DynamoDB (whose key limits would make bad input a 5xx)."""
    if value is None or not is_id(value):
        raise NotFoundError(f"{what} not found")
    return value


def new_id() -> str:
    """A new ULID as a 26-character string; later ids sort after earlier ones."""
    return str(ULID())
