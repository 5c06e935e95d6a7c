"""Fresh, sortable identifiers (ULIDs) for sessions, leads and events."""

from __future__ import annotations

import re

from ulid import ULID

# Client ids and profile names: 1-64 ASCII letters, digits, '-' or '_' (no '.': client ids are part of
# API keys). Session and lead ids (ULIDs) fit it too, so anything else cannot name a stored item.
NAME_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")


def new_id() -> str:
    """A new ULID as a 26-character string; later ids sort after earlier ones."""
    return str(ULID())
