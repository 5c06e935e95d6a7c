"""Lead: contact details a conversation captured, for a client's CRM.

Keys: hash `client_id`, range `lead_id` (a ULID, fresh per instance).
"""

from __future__ import annotations

from pynamodb.attributes import ListAttribute, UnicodeAttribute, UTCDateTimeAttribute

from openbrain.core.ids import new_id
from openbrain.storage.orm.base import OpenBrainModel

LEAD_FIELDS = (
    "full_name",
    "first_name",
    "middle_name",
    "last_name",
    "email",
    "phone",
    "date_of_birth",
    "state_of_residence",
    "medications",
    "notes",
)
MAX_DELIVERED_KEYS = 50


class Lead(OpenBrainModel):
    """Someone who asked to be contacted. `status` is `new` until a target delivers it (`delivered`)."""

    class Meta:
        table_name = "openbrain-leads"
        region = "us-east-1"
        billing_mode = "PAY_PER_REQUEST"

    client_id = UnicodeAttribute(hash_key=True)
    lead_id = UnicodeAttribute(range_key=True, default_for_new=new_id)
    session_id = UnicodeAttribute(null=True)
    full_name = UnicodeAttribute(null=True)
    first_name = UnicodeAttribute(null=True)
    middle_name = UnicodeAttribute(null=True)
    last_name = UnicodeAttribute(null=True)
    email = UnicodeAttribute(null=True)
    phone = UnicodeAttribute(null=True)
    date_of_birth = UnicodeAttribute(null=True)
    state_of_residence = UnicodeAttribute(null=True)
    medications = ListAttribute(of=UnicodeAttribute, default=list)
    notes = UnicodeAttribute(null=True)
    status = UnicodeAttribute(default="new")
    delivered_at = UTCDateTimeAttribute(null=True)
    # Idempotency keys of the events a target delivered (latest MAX_DELIVERED_KEYS): a redelivered event
    # whose key is here is acknowledged without posting again (openbrain/targets/lead_webhook.py).
    delivered_keys = ListAttribute(of=UnicodeAttribute, default=list)

    def to_public_dict(self) -> dict[str, object]:
        """The lead as JSON for its client (a webhook body, an API response)."""
        data: dict[str, object] = {
            "client_id": self.client_id,
            "lead_id": self.lead_id,
            "session_id": self.session_id,
            "status": self.status,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }
        for name in LEAD_FIELDS:
            data[name] = getattr(self, name)
        return data
