"""Fresh, sortable identifiers (ULIDs) for sessions, leads and events."""

from __future__ import annotations

from ulid import ULID


def new_id() -> str:
    """A new ULID as a 26-character string; later ids sort after earlier ones."""
    return str(ULID())
