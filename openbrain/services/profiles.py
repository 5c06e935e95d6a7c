"""A client's agent profiles: get, list, put and delete, with optimistic locking, on a `ProfileStore`.

The API's `/agent-configs` routes, `ob-tuner` and `ob-admin config import` all save through here.
`expected` is the version the caller last saw: an int (the stored profile must still be at that
version), `None` (no profile may be stored under that name: create only) or `LATEST` (whatever is stored
now). Whichever it is, the write itself is conditional on the version read, so a concurrent edit between
the read and the write is a `ConflictError` too, and a conflict writes nothing.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from openbrain.core.errors import ConflictError, NotFoundError
from openbrain.domain.profile import DEFAULT_PROFILE, AgentProfile
from openbrain.storage.orm.agent_config import AgentConfig, validate_profile_name
from openbrain.storage.stores import ProfileStore


class Expect(enum.Enum):
    LATEST = "latest"


LATEST = Expect.LATEST
Expected = int | None | Expect


@dataclass(frozen=True)
class Saved:
    config: AgentConfig
    created: bool


def get(store: ProfileStore, client_id: str, name: str) -> AgentConfig:
    """The stored profile; for `default`, the built-in defaults (version None) until one is stored."""
    return store.get_or_default(client_id, name)


def list_profiles(store: ProfileStore, client_id: str) -> list[AgentConfig]:
    """The client's stored profiles, by name."""
    return store.of_client(client_id)


def _stored(store: ProfileStore, client_id: str, name: str) -> AgentConfig | None:
    try:
        return store.get(client_id, name)
    except NotFoundError:
        return None


def check_expected(client_id: str, name: str, current: AgentConfig | None, expected: Expected) -> None:
    """`ConflictError` unless the stored profile (`current`, None when there is none) is the one expected."""
    what = f"profile {name!r} of client {client_id!r}"
    if expected is LATEST:
        return
    if expected is None:
        if current is not None:
            raise ConflictError(f"{what} already exists (version {current.version})")
    elif current is None:
        raise ConflictError(f"{what} is not stored, not version {expected}")
    elif current.version != expected:
        raise ConflictError(f"{what} is at version {current.version}, not version {expected}")


def prepare(client_id: str, name: str, profile: AgentProfile, current: AgentConfig | None,
            expected: Expected) -> AgentConfig:
    """The item that saves `profile` over `current` (what is stored, or None), after `check_expected`;
    its version is `current`'s, so DynamoDB refuses the write if someone saved in between."""
    check_expected(client_id, name, current, expected)
    item = current if current is not None else AgentConfig(client_id, name)
    item.set_profile(profile)
    return item.validate()


def put(store: ProfileStore, client_id: str, name: str, profile: AgentProfile, expected: Expected = LATEST) -> Saved:
    """Create or replace the profile `name` of `client_id`; `Saved.created` says which it did."""
    current = _stored(store, client_id, validate_profile_name(name))  # a bad name never reaches DynamoDB
    item = prepare(client_id, name, profile, current, expected)
    try:
        store.save(item)
    except ConflictError as exc:
        raise ConflictError(f"profile {name!r} of client {client_id!r} changed while saving") from exc
    return Saved(item, created=current is None)


def delete(store: ProfileStore, client_id: str, name: str, expected: int | Expect = LATEST) -> None:
    """Delete the stored profile (`NotFoundError` if there is none) if it is at `expected`. The `default`
    profile is not deleted (`ConflictError`): every chat that names no profile runs on it, so it always
    exists; storing it without fields resets it to the built-in values."""
    if name == DEFAULT_PROFILE:
        raise ConflictError(f"the {DEFAULT_PROFILE!r} profile cannot be deleted: chats that name no profile use it; "
                            "store it with no fields to reset it to the built-in values")
    current = _stored(store, client_id, validate_profile_name(name))
    if current is None:
        raise NotFoundError(f"profile {name!r} not found for client {client_id!r}")
    check_expected(client_id, name, current, expected)
    try:
        store.delete(current)
    except ConflictError as exc:
        raise ConflictError(f"profile {name!r} of client {client_id!r} changed while deleting") from exc
