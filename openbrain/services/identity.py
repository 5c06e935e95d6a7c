"""End-user identity: a client's server vouches for its signed-in users (docs/api.md, End-user identity).

Each client may have an identity secret (`ob-admin client identity CLIENT --rotate`), stored as an SSM
SecureString `<OB_IDENTITY_SECRETS_PATH>/<client_id>/<id>`, never in a table: the Client keeps
`identity_secret_ref`. Each rotation makes a parameter of a new name (and deletes the old), so it reaches every
process at its next request: the reference, read with the Client on every request, names a parameter no process
has cached (the resolver caches by reference for 5 minutes). SSM rather than Secrets Manager: the webhook secrets
live there already, a standard parameter costs nothing, and the rotation is ours (no rotation Lambda).

The client's server proves a user id with the secret in one of two ways:

- `X-User-Id` + `X-User-Hash`: the lowercase hex HMAC-SHA256(secret, user id), as Intercom and Chatwoot do;
- `X-Widget-Token`: a JWT (HS256) with `sub` the user id, `cid` the client id, `aud` "openbrain-widget", `iat`,
  `exp` (at most an hour after `iat`) and optionally `profile` (then it may start or continue sessions of that
  profile only). `POST /widget-tokens` (server key) mints one: `mint_token`; the client's server may also mint
  its own. Its key is derived from the secret (`token_key`), never the secret itself: a JWT's signing input
  (`<header>.<payload>`) is a valid user id, so with the secret as key, the user hash of a user id an attacker
  chose (a sign-up name) would be the signature of a token for any other user.

`identify` turns what a request presented into the `EndUser` it speaks for (domain/identity.py):

- a server key is trusted: `X-User-Id` alone acts as that user (None without one: no user, every session);
- a widget key's identity is verified; any failure (wrong, expired, another client's or user's, a hash without a
  user id or the reverse, a token beside a hash) is one `UnauthorizedError` that never says which part failed;
- a widget key without identity is an anonymous visitor, refused when the client has `identity_required`.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from openbrain.core.clock import utcnow
from openbrain.core.errors import ConflictError, InvalidInputError, OpenBrainError, UnauthorizedError
from openbrain.core.ids import is_id, new_id
from openbrain.domain.identity import (
    ANONYMOUS,
    IDENTITY_REFUSED,
    IDENTITY_REQUIRED,
    MAX_TOKEN_SECONDS,
    TOKEN_AUDIENCE,
    EndUser,
    is_user_id,
    validate_user_id,
)
from openbrain.storage.orm.client import SERVER

if TYPE_CHECKING:
    from openbrain.aws.backend import Backend
    from openbrain.storage.orm import Client

log = logging.getLogger(__name__)

ALGORITHM = "HS256"
TOKEN_KEY_SALT = b"openbrain-widget-token"  # token_key's HKDF salt
LEEWAY_SECONDS = 30  # clock skew allowed between the client's server and ours
_REQUIRED_CLAIMS = ["sub", "cid", "aud", "iat", "exp"]


@dataclass(frozen=True)
class Presented:
    """The identity a request carries (each None when absent; an empty header is present, and fails). Typed
    `Any`: a WebSocket frame's JSON may hold any type there, which fails too."""

    user_id: Any = None
    user_hash: Any = None
    token: Any = None

    @property
    def anything(self) -> bool:
        return any(value is not None for value in (self.user_id, self.user_hash, self.token))


def user_hash(secret: str, user_id: str) -> str:
    """What the client's server computes: the lowercase hex HMAC-SHA256 of the user id (UTF-8) under the secret."""
    return hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def token_key(secret: str) -> bytes:
    """The key widget tokens are signed with: HKDF-Extract (RFC 5869) of the identity secret, salt
    `TOKEN_KEY_SALT`, i.e. HMAC-SHA256 keyed with the salt over the secret: keyed otherwise than every user hash
    (module docstring)."""
    return hmac.new(TOKEN_KEY_SALT, secret.encode(), hashlib.sha256).digest()


def identify(client: Client, key_kind: str, presented: Presented, backend: Backend) -> EndUser | None:
    """The end user a request of `client` with a key of `key_kind` speaks for (module docstring); None for a
    server key that names no user."""
    if key_kind == SERVER:
        if presented.token is not None:
            return _verified(client, presented, backend)
        return EndUser(validate_user_id(presented.user_id)) if presented.user_id is not None else None
    if not presented.anything:
        if client.identity_required:
            raise UnauthorizedError(IDENTITY_REQUIRED)
        return ANONYMOUS
    return _verified(client, presented, backend)


def _verified(client: Client, presented: Presented, backend: Backend) -> EndUser:
    if not client.identity_secret_ref:
        raise UnauthorizedError(IDENTITY_REFUSED)
    from openbrain.aws.secrets import resolver_for

    secret = resolver_for(backend).resolve(client.identity_secret_ref)
    if presented.token is not None:
        if presented.user_id is not None or presented.user_hash is not None or not isinstance(presented.token, str):
            raise UnauthorizedError(IDENTITY_REFUSED)
        return verify_token(presented.token, secret, client.client_id)
    if not is_user_id(presented.user_id) or not isinstance(presented.user_hash, str):  # a frame may hold anything
        raise UnauthorizedError(IDENTITY_REFUSED)
    user_id = str(presented.user_id)
    expected = user_hash(secret, user_id).encode()
    # Bytes: compare_digest refuses str with non-ASCII characters, which a header may carry.
    if not hmac.compare_digest(expected, presented.user_hash.lower().encode(errors="replace")):
        raise UnauthorizedError(IDENTITY_REFUSED)
    return EndUser(user_id)


def mint_token(client: Client, backend: Backend, user_id: str, profile: str | None = None,
               ttl_seconds: int = MAX_TOKEN_SECONDS, now: datetime | None = None) -> tuple[str, datetime]:
    """A widget token for `user_id` of `client` (scoped to `profile` if given), valid `ttl_seconds` (1-3600), and
    when it expires. `ConflictError` if the client has no identity secret (yet)."""
    import jwt

    validate_user_id(user_id)
    if profile is not None and not is_id(profile):
        raise InvalidInputError("profile: a profile name is 1-64 letters, digits, '-' or '_'")
    if not 0 < ttl_seconds <= MAX_TOKEN_SECONDS:
        raise InvalidInputError(f"ttlSeconds: 1-{MAX_TOKEN_SECONDS}")
    if not client.identity_secret_ref:
        raise ConflictError(f"client {client.client_id!r} has no identity secret; make one with "
                            f"`ob-admin client identity {client.client_id} --rotate`")
    from openbrain.aws.secrets import resolver_for

    secret = resolver_for(backend).resolve(client.identity_secret_ref)
    issued = (now or utcnow()).replace(microsecond=0)
    expires = issued + timedelta(seconds=ttl_seconds)
    claims: dict[str, Any] = {"sub": user_id, "cid": client.client_id, "aud": TOKEN_AUDIENCE,
                              "iat": int(issued.timestamp()), "exp": int(expires.timestamp())}
    if profile is not None:
        claims["profile"] = profile
    return jwt.encode(claims, token_key(secret), algorithm=ALGORITHM), expires


def verify_token(token: str, secret: str, client_id: str, now: datetime | None = None) -> EndUser:
    """The end user a widget token of `client_id` (signed with `token_key(secret)`) speaks for;
    `UnauthorizedError` (IDENTITY_REFUSED) unless its signature, audience, client, expiry (`LEEWAY_SECONDS` of
    skew), lifetime (at most an hour), user id and profile all check out. PyJWT does the JWS part; the rest are
    our claims."""
    import jwt

    moment = (now or utcnow()).timestamp()
    try:
        # PyJWT checks the signature, the algorithm, the audience and that every claim is there; the times
        # are checked below, against `now`, with the lifetime, which PyJWT has no rule for.
        claims = jwt.decode(token, token_key(secret), algorithms=[ALGORITHM], audience=TOKEN_AUDIENCE,
                            options={"require": _REQUIRED_CLAIMS, "verify_exp": False, "verify_iat": False})
    except jwt.PyJWTError:
        raise UnauthorizedError(IDENTITY_REFUSED) from None
    issued, expires, profile = claims["iat"], claims["exp"], claims.get("profile")
    if (type(issued) is not int or type(expires) is not int
            or not 0 < expires - issued <= MAX_TOKEN_SECONDS
            or expires + LEEWAY_SECONDS <= moment or issued - LEEWAY_SECONDS > moment
            or not hmac.compare_digest(str(claims["cid"]).encode(), client_id.encode())
            or not is_user_id(claims["sub"])
            or (profile is not None and not (isinstance(profile, str) and is_id(profile)))):
        raise UnauthorizedError(IDENTITY_REFUSED)
    return EndUser(claims["sub"], profile, datetime.fromtimestamp(expires + LEEWAY_SECONDS, UTC))


# --- operating: ob-admin client identity ------------------------------------------------------------

def new_identity_secret() -> str:
    """32 random bytes, URL-safe base64 (43 characters), behind a prefix that says what it is."""
    return "obid_" + secrets.token_urlsafe(32)


def rotate_identity_secret(backend: Backend, client_id: str) -> tuple[Client, str]:
    """A new identity secret for the client: a new SSM SecureString `<OB_IDENTITY_SECRETS_PATH>/<client_id>/<id>`
    (a new name each time: see the module docstring), the client pointed at it, the old one deleted. Returns the
    client and the secret (shown once). Hashes and tokens made with the old secret are refused from the next
    request on."""
    from openbrain.aws.secrets import delete_ssm_secret, put_ssm_secret
    from openbrain.services.clients import get_client

    client = get_client(backend.stores, client_id)
    old = client.identity_secret_ref
    secret = new_identity_secret()
    client.identity_secret_ref = put_ssm_secret(
        backend, f"{backend.settings.identity_secrets_path}/{client.client_id}/{new_id()}", secret)
    try:
        backend.stores.clients.save(client)
    except OpenBrainError:  # the client changed meanwhile (or the table failed): the new secret is nobody's
        delete_ssm_secret(backend, client.identity_secret_ref)
        raise
    if old:
        try:
            delete_ssm_secret(backend, old)
        except OpenBrainError as exc:  # the new secret is in force: a parameter left over is only clutter
            log.warning("could not delete the old identity secret of client %s: %s", client_id, exc.message)
    log.info("made a new identity secret for client %s (%s)", client_id, client.identity_secret_ref)
    return client, secret


def require_identity(backend: Backend, client_id: str, required: bool) -> Client:
    """Turn on (or off) refusing widget requests without a verified end user. On needs a secret first."""
    from openbrain.services.clients import get_client

    client = get_client(backend.stores, client_id)
    if required and not client.identity_secret_ref:
        raise ConflictError(f"client {client_id!r} has no identity secret yet: make one first "
                            f"(`ob-admin client identity {client_id} --rotate`)")
    if bool(client.identity_required) != required:
        client.identity_required = required
        backend.stores.clients.save(client)
    return client

