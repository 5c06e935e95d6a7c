"""`once`: Powertools idempotency on the backend's DynamoDB, as POST /chat uses it."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.api import LambdaContext

from openbrain.aws.backend import Backend
from openbrain.core.errors import InvalidInputError, RequestInProgressError
from openbrain.services.idempotency import MAX_KEY_CHARS, check_key, once

pytestmark = pytest.mark.integration


def test_a_request_still_running_answers_409_to_its_retry(backend: Backend) -> None:
    seen: list[Any] = []

    def retried_meanwhile() -> dict[str, Any]:
        with pytest.raises(RequestInProgressError) as raised:
            once(backend, "acme", "key-1", {"message": "hi"}, lambda: {"never": "run"}, LambdaContext())
        seen.append(raised.value)
        return {"reply": 1}

    assert once(backend, "acme", "key-1", {"message": "hi"}, retried_meanwhile, LambdaContext()) == (
        {"reply": 1}, False)
    assert seen[0].code == "request_in_progress"
    assert once(backend, "acme", "key-1", {"message": "hi"}, lambda: {"reply": 2}, LambdaContext()) == (
        {"reply": 1}, True)


@given(st.text(max_size=300))
def test_only_printable_ascii_keys_of_1_to_255_characters_are_accepted(key: str) -> None:
    valid = 1 <= len(key) <= MAX_KEY_CHARS and all("!" <= c <= "~" for c in key)
    if valid:
        assert check_key(key) == key
    else:
        with pytest.raises(InvalidInputError):
            check_key(key)
