"""The ORM's shared behaviour: timestamps, optimistic locking, and errors the library understands.

Every OpenBrain model keeps PynamoDB's API (`save`, `refresh`, `get`, `delete`, `query`) and adds
`load` (an alias of `get`, as in the original OpenBra.in), `get_all(client_id)`, which pages through
every item of one client, and `scan_all()`, which pages through the whole table. PynamoDB's exceptions
(which wrap botocore's) never leave this module: a missing item is `NotFoundError`, a lost
optimistic-locking race is `ConflictError`, an item over DynamoDB's 400 KB limit is `ItemTooLargeError`,
anything else from DynamoDB is `DatabaseError` (an `UpstreamError`), its message saying what to do where we
know (`failure`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Self

from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError
from pynamodb.attributes import UTCDateTimeAttribute, VersionAttribute
from pynamodb.exceptions import DeleteError, DoesNotExist, PutError, PynamoDBException
from pynamodb.models import Model

from openbrain.core.clock import utcnow
from openbrain.core.errors import ConflictError, DatabaseError, ItemTooLargeError, NotFoundError

_CONDITION_FAILED = "ConditionalCheckFailedException"
# DynamoDB's (and moto's, DynamoDB Local's, dynalite's) ValidationException text for an item over 400 KB
TOO_LARGE_MESSAGE = "maximum allowed size"


# What a user can do about a DynamoDB error code, where the code alone does not say.
_ADVICE = {
    "ResourceNotFoundException": "the table does not exist; create the tables with `ob-admin init`",
    "UnknownOperationException": "the endpoint does not implement {operation}; use one that does (DynamoDB, "
                                 "DynamoDB Local, LocalStack, a moto server)",
}


def failure(exc: PynamoDBException, doing: str) -> str:
    """`DynamoDB could not <doing> (<error code>)`, with what to do where we know: an endpoint that cannot be
    reached is named with the settings it comes from, a missing table and an operation the endpoint lacks say
    how to get them."""
    cause = exc.cause
    if isinstance(cause, EndpointConnectionError | ConnectTimeoutError):
        return (f"DynamoDB could not {doing}: could not connect to {cause.kwargs.get('endpoint_url')} (set by "
                "AWS_ENDPOINT_URL_DYNAMODB or AWS_ENDPOINT_URL, else AWS itself in AWS_REGION)")
    code = exc.cause_response_code or type(exc).__name__
    advice = _ADVICE.get(code, "").format(operation=getattr(cause, "operation_name", None) or "this operation")
    return f"DynamoDB could not {doing} ({code})" + (f": {advice}" if advice else "")


def _upstream(exc: PynamoDBException, action: str, what: str) -> DatabaseError:
    return DatabaseError(failure(exc, f"{action} {what}"))


class OpenBrainModel(Model):
    """Base of the tables of versioned items (every model but RateCounter's counters). Subclasses set `Meta`
    (table name and region are bound at run time by `openbrain.storage.orm.bind_models`) and their key
    attributes."""

    created_at = UTCDateTimeAttribute(default_for_new=utcnow)
    updated_at = UTCDateTimeAttribute(default_for_new=utcnow)
    version = VersionAttribute()

    def _describe(self) -> str:
        keys = [str(v) for v in self._get_keys().values()]
        return f"{type(self).__name__} {'/'.join(keys)}"

    def save(self, condition: Any = None, *, add_version_condition: bool = True) -> dict[str, Any]:
        """Write the item. Raises `ConflictError` if someone saved a newer version since we read it."""
        self.updated_at = utcnow()
        try:
            return super().save(condition, add_version_condition=add_version_condition)
        except PutError as exc:
            if exc.cause_response_code == _CONDITION_FAILED:
                raise ConflictError(
                    f"{self._describe()} was changed by someone else; reload and try again"
                ) from exc
            too_large = TOO_LARGE_MESSAGE in (exc.cause_response_message or "")
            if exc.cause_response_code == "ValidationException" and too_large:
                raise ItemTooLargeError(f"{self._describe()} is larger than DynamoDB's 400 KB item limit") from exc
            raise _upstream(exc, "save", self._describe()) from exc

    def delete(self, condition: Any = None, *, add_version_condition: bool = True) -> Any:
        """Delete the item. Raises `ConflictError` if it changed since we read it (or is already gone)."""
        try:
            return super().delete(condition, add_version_condition=add_version_condition)
        except DeleteError as exc:
            if exc.cause_response_code == _CONDITION_FAILED:
                raise ConflictError(f"{self._describe()} changed or was deleted since it was read") from exc
            raise _upstream(exc, "delete", self._describe()) from exc

    def refresh(self, consistent_read: bool = True) -> None:
        """Reload every attribute from the table. Raises `NotFoundError` if the item is gone."""
        try:
            super().refresh(consistent_read=consistent_read)
        except DoesNotExist as exc:
            raise NotFoundError(f"{self._describe()} not found") from exc
        except PynamoDBException as exc:
            raise _upstream(exc, "read", self._describe()) from exc

    @classmethod
    def get(  # type: ignore[override]
        cls,
        hash_key: Any,
        range_key: Any = None,
        consistent_read: bool = True,
        attributes_to_get: Any = None,
    ) -> Self:
        """Fetch one item by key. Raises `NotFoundError` if there is none."""
        what = f"{cls.__name__} {hash_key}" + (f"/{range_key}" if range_key is not None else "")
        try:
            return super().get(hash_key, range_key, consistent_read=consistent_read,
                               attributes_to_get=attributes_to_get)
        except DoesNotExist as exc:
            raise NotFoundError(f"{what} not found") from exc
        except PynamoDBException as exc:
            raise _upstream(exc, "read", what) from exc

    @classmethod
    def load(cls, hash_key: Any, range_key: Any = None) -> Self:
        """Alias of `get`, the name the original OpenBra.in used."""
        return cls.get(hash_key, range_key)

    @classmethod
    def iter_all(cls, client_id: str, page_size: int | None = None, *, newest_first: bool = False) -> Iterator[Self]:
        """Every item of one client, fetched page by page (`page_size` items per DynamoDB call), in range-key
        order (`newest_first`: descending; ids are ULIDs, so that is newest first)."""
        try:
            yield from cls.query(client_id, page_size=page_size, scan_index_forward=not newest_first)
        except PynamoDBException as exc:
            raise _upstream(exc, "list", f"{cls.__name__} items of {client_id}") from exc

    @classmethod
    def get_all(cls, client_id: str, page_size: int | None = None) -> list[Self]:
        """Every item of one client as a list, following DynamoDB's pagination to the end."""
        return list(cls.iter_all(client_id, page_size=page_size))

    @classmethod
    def scan_all(cls, attributes_to_get: Sequence[str] | None = None, *, what: str | None = None) -> Iterator[Self]:
        """Every item of the table (a scan, page by page), optionally only some attributes of each. `what`
        names what is listed in the error if DynamoDB fails."""
        try:
            yield from cls.scan(attributes_to_get=attributes_to_get)
        except PynamoDBException as exc:
            raise _upstream(exc, "list", what or f"{cls.__name__} items") from exc
