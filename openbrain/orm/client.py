"""Client: a tenant, whose website widget and CRM use OpenBrain.

Keys: hash `client_id`. API keys are stored only as SHA-256 hashes (a key is 32 random bytes, so a
plain hash is enough: there is nothing to brute-force). The webhook signing secret is not stored
here: `webhook_secret_ref` names where it lives (an SSM parameter or Secrets Manager secret).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from pynamodb.attributes import ListAttribute, UnicodeAttribute

from openbrain.orm.base import OpenBrainModel

API_KEY_PREFIX = "ob_"


def hash_api_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


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

    def add_api_key(self) -> str:
        """Create a new API key, store its hash, and return the key (shown once, never stored)."""
        api_key = API_KEY_PREFIX + secrets.token_urlsafe(32)
        self.api_key_hashes = [*(self.api_key_hashes or []), hash_api_key(api_key)]  # type: ignore[list-item]
        return api_key

    def has_api_key(self, api_key: str) -> bool:
        candidate = hash_api_key(api_key)
        return any(hmac.compare_digest(candidate, str(stored)) for stored in self.api_key_hashes or [])
