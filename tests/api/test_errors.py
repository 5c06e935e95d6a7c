"""The one error mapping read backwards: a stream's `error` code gives the status `POST /chat` answers."""

from __future__ import annotations

from http import HTTPStatus

import pytest

from openbrain.api.routes.errors import InvalidJsonError, PayloadTooLargeError, public_error, status_of_code
from openbrain.core.errors import (
    ConfigurationError,
    DatabaseError,
    ForbiddenError,
    IdempotencyKeyReusedError,
    NotFoundError,
    SessionEndedError,
    StoredDataError,
    UnauthorizedError,
    UpstreamTimeoutError,
)


@pytest.mark.parametrize("exc", [
    UnauthorizedError("x"), ForbiddenError("x"), NotFoundError("x"), SessionEndedError("x"),
    IdempotencyKeyReusedError("x"), InvalidJsonError("x"), PayloadTooLargeError("x"), DatabaseError("x"),
    UpstreamTimeoutError("x"), ConfigurationError("x"), StoredDataError("x"), ValueError("a bug"),
])
def test_the_code_of_an_error_maps_back_to_its_status(exc: Exception) -> None:
    status, code, _ = public_error(exc)

    assert status_of_code(code) == status


def test_an_unknown_code_is_a_500() -> None:
    assert status_of_code("no_such_code") == HTTPStatus.INTERNAL_SERVER_ERROR
