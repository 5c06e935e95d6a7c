"""Client: a tenant, whose website widget and CRM use OpenBrain.

Keys: hash `client_id` (1-64 letters, digits, '-' or '_'; checked on save and when a key is made).

API keys are self-locating: `ob.<client_id>.<secret>`, so checking one costs a single GetItem of the
client it names. The secret is 32 random bytes (URL-safe base64, which has no '.'); only the SHA-256 of
the whole key is stored (a random 256-bit secret needs no slow hash: there is nothing to brute-force).
The webhook signing secret is not stored here either: `webhook_secret_ref` names where it lives (an
SSM parameter or Secrets Manager secret).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import Any

from pynamodb.attributes import ListAttribute, UnicodeAttribute

from openbrain.errors import InvalidInputError
from openbrain.ids import NAME_PATTERN
from openbrain.orm.base import OpenBrainModel

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


def client_id_of_api_key(api_key: object) -> str | None:
    """The client id an API key names, or None if it is not shaped like one of ours."""
    if not isinstance(api_key, str) or len(api_key) > 256:
        return None
    prefix, _, rest = api_key.partition(".")
    client_id, _, secret = rest.partition(".")
    if prefix + "." != API_KEY_PREFIX or not CLIENT_ID_PATTERN.fullmatch(client_id):
        return None
    if not _SECRET_PATTERN.fullmatch(secret):
        return None
    return client_id


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

    def save(self, condition: Any = None, *, add_version_condition: bool = True) -> dict[str, Any]:
        validate_client_id(self.client_id)
        return super().save(condition, add_version_condition=add_version_condition)

    def add_api_key(self) -> str:
        """Create a new API key `ob.<client_id>.<secret>`, store its hash, and return the key (shown once,
        never stored)."""
        api_key = f"{API_KEY_PREFIX}{validate_client_id(self.client_id)}.{secrets.token_urlsafe(32)}"
        self.api_key_hashes = [*(self.api_key_hashes or []), hash_api_key(api_key)]  # type: ignore[list-item]
        return api_key

    def has_api_key(self, api_key: str) -> bool:
        """Whether `api_key` is one of this client's keys. Compares against every stored hash in
        constant time, so timing reveals neither whether nor which key matched."""
        candidate = hash_api_key(api_key)
        found = False
        for stored in self.api_key_hashes or []:
            found |= hmac.compare_digest(candidate, str(stored))
        return found

    def allows_origin(self, origin: str | None) -> bool:
        """Whether a browser page served from `origin` (scheme://host[:port]) may call the API."""
        return bool(origin) and origin in (self.allowed_origins or [])
