"""`Idempotency-Key` for `POST /chat` (the Stripe convention), on Powertools' idempotency utility.

A request sent again with the same key and the same body within 24 hours gets the stored response, and no
second turn runs; the same key with another body is `IdempotencyKeyReusedError` (422); while the first is
still running, `RequestInProgressError` (409: retry later). A request that failed (4xx or 5xx) stores
nothing, so its retry runs. Keys are scoped to the client of the API key: one client can never replay
another's response. Records live in the `OB_IDEMPOTENCY_TABLE` table (hash key `id`, TTL `expiration`).

Powertools does the record keeping (conditional put of an in-progress record, the response saved after,
expiry of a record whose Lambda died mid-request at the Lambda's own timeout) that would otherwise be
written here again.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from openbrain.core.errors import IdempotencyKeyReusedError, InvalidInputError, RequestInProgressError, UpstreamError

if TYPE_CHECKING:
    from openbrain.aws.backend import Backend

RETENTION_SECONDS = 24 * 60 * 60
MAX_KEY_CHARS = 255
KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,255}$")  # printable ASCII, no spaces (Stripe: up to 255 characters)
REPLAYED = "_openbrain_replayed"


def check_key(key: str) -> str:
    if not KEY_PATTERN.fullmatch(key):
        raise InvalidInputError(
            f"Idempotency-Key must be 1-{MAX_KEY_CHARS} printable ASCII characters without spaces (e.g. a UUID)"
        )
    return key


def once(backend: Backend, client_id: str, key: str, body: Any, run: Callable[[], dict[str, Any]],
         lambda_context: Any) -> tuple[dict[str, Any], bool]:
    """`run()`'s JSON-able result, run at most once per (`client_id`, `key`) and `body`; and whether it is a
    replay of a stored result. `lambda_context` (Lambda's, or ob-serve's stand-in) bounds an in-progress
    record: if the process dies mid-request, a retry may run once the Lambda's remaining time has passed."""
    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
        idempotent_function,
    )
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyAlreadyInProgressError,
        IdempotencyPersistenceLayerError,
        IdempotencyValidationError,
    )

    config = IdempotencyConfig(
        event_key_jmespath="[client, key]", payload_validation_jmespath="body", hash_function="sha256",
        expires_after_seconds=RETENTION_SECONDS, response_hook=lambda response, record: {**response, REPLAYED: True},
    )
    config.register_lambda_context(lambda_context)
    persistence = DynamoDBPersistenceLayer(table_name=backend.settings.idempotency_table,
                                           boto3_client=backend.client("dynamodb"))

    @idempotent_function(data_keyword_argument="request", persistence_store=persistence, config=config,
                         key_prefix="chat")
    def run_once(request: dict[str, Any]) -> dict[str, Any]:
        return run()

    try:
        result = run_once(request={"client": client_id, "key": check_key(key), "body": body})
    except IdempotencyValidationError as exc:
        raise IdempotencyKeyReusedError(
            "this Idempotency-Key was already used with a different request body; use a new key per request"
        ) from exc
    except IdempotencyAlreadyInProgressError as exc:
        raise RequestInProgressError("a request with this Idempotency-Key is still running; retry shortly") from exc
    except IdempotencyPersistenceLayerError as exc:
        raise UpstreamError("the idempotency records are unavailable; retry, or send no Idempotency-Key") from exc
    replayed = bool(result.pop(REPLAYED, False))
    return result, replayed
