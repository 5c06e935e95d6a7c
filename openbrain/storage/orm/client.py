"""Client: a tenant, whose website widget and CRM use OpenBrain.

Keys: hash `client_id` (1-64 letters, digits, '-' or '_'; checked on save and when a key is made).

API keys are self-locating: `ob.<client_id>.<secret>`, so checking one costs a single GetItem of the
client it names. The secret is 32 random bytes (URL-safe base64, which has no '.'); only the SHA-256 of
the whole key is stored (a random 256-bit secret needs no slow hash: there is nothing to brute-force).
The webhook signing secret is not stored here either: `webhook_secret_ref` names where it lives (an
SSM parameter or Secrets Manager secret); so is the end-user identity secret (`identity_secret_ref`, an SSM
parameter: services/identity.py), and `identity_required` refuses widget requests without a verified
end user. `limits` holds the rate limits and quotas that differ from the
defaults (domain/limits.py).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import Any

from pynamodb.attributes import BooleanAttribute, ListAttribute, MapAttribute, UnicodeAttribute

from openbrain.core.errors import InvalidInputError
from openbrain.core.ids import NAME_PATTERN
from openbrain.domain.limits import RateLimits
from openbrain.storage.orm.base import OpenBrainModel

SERVER = "server"
WIDGET = "widget"
# A key's kind is in its text, and the stored hash covers the whole key: a widget key cannot be turned
# into a server key. Server keys (`ob.`) may do everything; widget keys (`obw.`), which sit in a public
# web page, may only chat and read their sessions.
KEY_PREFIXES = {SERVER: "ob", WIDGET: "obw"}
API_KEY_PREFIX = "ob."
CLIENT_ID_PATTERN = NAME_PATTERN
_SECRET_PATTERN = re.compile(r"[A-Za-z0-9_-]{32,128}")


def hash_api_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def validate_client_id(client_id: object) -> str:
    """`client_id` if it is 1-64 letters, digits, '-' or '_' (no '.': it is part of API keys)."""
    if not isinstance(client_id, str) or not CLIENT_ID_PATTERN.fullmatch(client_id):
        raise InvalidInputError(f"client_id must be 1-64 letters, digits, '-' or '_', got {client_id!r}")
    return client_id


def parse_api_key(api_key: object) -> tuple[str, str] | None:
    """(kind, client id) of an API key `<ob|obw>.<client_id>.<secret>`, or None if it is not one of ours."""
    if not isinstance(api_key, str) or len(api_key) > 256:
        return None
    prefix, _, rest = api_key.partition(".")
    client_id, _, secret = rest.partition(".")
    kind = next((k for k, p in KEY_PREFIXES.items() if p == prefix), None)
    if kind is None or not CLIENT_ID_PATTERN.fullmatch(client_id) or not _SECRET_PATTERN.fullmatch(secret):
        return None
    return kind, client_id


def client_id_of_api_key(api_key: object) -> str | None:
    """The client id an API key names, or None if it is not shaped like one of ours."""
    parsed = parse_api_key(api_key)
    return parsed[1] if parsed else None


class Client(OpenBrainModel):
    """A tenant: display name, hashed API keys, allowed origins, webhook URL and secret reference."""

    class Meta:
        table_name = "openbrain-clients"
        region = "us-east-1"
        billing_mode = "PAY_PER_REQUEST"

    client_id = UnicodeAttribute(hash_key=True)
    display_name = UnicodeAttribute(default="")
    api_key_hashes = ListAttribute(of=UnicodeAttribute, default=list)
    allowed_origins = ListAttribute(of=UnicodeAttribute, default=list)
    webhook_url = UnicodeAttribute(null=True)
    webhook_secret_ref = UnicodeAttribute(null=True)
    limits: MapAttribute[str, Any] = MapAttribute(null=True)
    identity_secret_ref = UnicodeAttribute(null=True)
    identity_required = BooleanAttribute(default=False)

    def save(self, condition: Any = None, *, add_version_condition: bool = True) -> dict[str, Any]:
        validate_client_id(self.client_id)
        return super().save(condition, add_version_condition=add_version_condition)

    def add_api_key(self, kind: str = SERVER, api_key: str | None = None, *, keep: int | None = None) -> str:
        """Add an API key of `kind` (a new `<ob|obw>.<client_id>.<secret>`, or `api_key` if given, which
        must name this client and kind), store its hash, and return the key (shown once, never stored). A key
        stored already becomes the newest, not a second copy; with `keep`, only the `keep` newest keys of `kind`
        stay (the keys are kept in the order they were added)."""
        if kind not in KEY_PREFIXES:
            raise InvalidInputError(f"API key kind must be one of {', '.join(KEY_PREFIXES)}, got {kind!r}")
        if api_key is None:
            api_key = f"{KEY_PREFIXES[kind]}.{validate_client_id(self.client_id)}.{secrets.token_urlsafe(32)}"
        elif parse_api_key(api_key) != (kind, self.client_id):
            raise InvalidInputError(
                f"a {kind} key of this client looks like {KEY_PREFIXES[kind]}.{self.client_id}.<32+ letters, "
                "digits, - or _>"
            )
        entry = f"{kind}:{hash_api_key(api_key)}"
        hashes = [*(str(stored) for stored in self.api_key_hashes or [] if str(stored) != entry), entry]
        if keep is not None:
            stale = set([stored for stored in hashes if stored.startswith(f"{kind}:")][:-keep])
            hashes = [stored for stored in hashes if stored not in stale]
        self.api_key_hashes = hashes  # type: ignore[assignment]
        return api_key

    def revoke_api_keys(self, kind: str | None = None) -> None:
        """Forget every key of `kind` (every key, if None)."""
        self.api_key_hashes = [  # type: ignore[assignment]
            entry for entry in self.api_key_hashes or [] if kind is not None and not str(entry).startswith(f"{kind}:")
        ]

    def api_key_count(self, kind: str) -> int:
        return sum(1 for entry in self.api_key_hashes or [] if str(entry).startswith(f"{kind}:"))

    def has_api_key(self, api_key: str) -> bool:
        """Whether `api_key` is one of this client's keys (of the kind it says it is). Compares against
        every stored hash in constant time, so timing reveals neither whether nor which key matched."""
        parsed = parse_api_key(api_key)
        candidate = f"{parsed[0] if parsed else '?'}:{hash_api_key(api_key)}"
        found = False
        for stored in self.api_key_hashes or []:
            found |= hmac.compare_digest(candidate, str(stored))
        return found

    def allows_origin(self, origin: str | None) -> bool:
        """Whether a browser page served from `origin` (scheme://host[:port]) may call the API."""
        return bool(origin) and origin in (self.allowed_origins or [])

    @property
    def rate_limits(self) -> RateLimits:
        """The client's rate limits and quotas: the stored ones over the defaults."""
        stored = self.limits.as_dict() if isinstance(self.limits, MapAttribute) else self.limits
        return RateLimits(**{name: int(value) for name, value in (stored or {}).items()})
