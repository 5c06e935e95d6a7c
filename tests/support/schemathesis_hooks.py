"""schemathesis hooks for the fuzz tests (SCHEMATHESIS_HOOKS=support.schemathesis_hooks).

Every generated request gets its own `Idempotency-Key`: schemathesis would otherwise send one generated key
with many bodies, which the API rightly refuses (422 `idempotency_key_reused`, docs/api.md)."""

from __future__ import annotations

import uuid
from typing import Any

import schemathesis


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    if case.headers and "Idempotency-Key" in case.headers:
        case.headers["Idempotency-Key"] = str(uuid.uuid4())
    return case
