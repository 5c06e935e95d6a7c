"""Lead (openbrain/storage/orm/lead.py): fresh ULID ids, defaults, and its public JSON."""

from __future__ import annotations

import json

import pytest
from ulid import ULID

from openbrain.aws.backend import Backend
from openbrain.storage.orm import Lead
from openbrain.storage.orm.lead import LEAD_FIELDS

pytestmark = pytest.mark.integration


def test_every_instance_gets_a_fresh_ulid_lead_id_that_sorts_by_creation() -> None:
    ids = [Lead("acme").lead_id for _ in range(500)]

    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    assert all(str(ULID.from_str(lead_id)) == lead_id for lead_id in ids)


def test_a_new_lead_is_new_and_undelivered(backend: Backend) -> None:
    lead = Lead("acme", email="ada@example.com")
    lead.save()

    stored = Lead.get("acme", lead.lead_id)

    assert (stored.status, stored.delivered_at, stored.medications) == ("new", None, [])


def test_public_dict_is_json_with_every_lead_field(backend: Backend) -> None:
    # given
    lead = Lead("acme", session_id="S1", full_name="Ada Lovelace", email="ada@example.com", medications=["x"])
    lead.save()

    # when
    data = json.loads(json.dumps(Lead.get("acme", lead.lead_id).to_public_dict()))

    # then
    assert set(data) == {"client_id", "lead_id", "session_id", "status", "created_at", "updated_at", *LEAD_FIELDS}
    assert (data["lead_id"], data["full_name"], data["medications"]) == (lead.lead_id, "Ada Lovelace", ["x"])
    assert data["phone"] is None
    assert data["created_at"] == lead.created_at.isoformat()
