"""capture_lead: create or update the session's Lead from what the person told the model (written, and
announced, by the turn's commit: `ToolContext`)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from openbrain.domain.events import LeadCaptured, LeadUpdated
from openbrain.storage.orm.lead import LEAD_FIELDS, Lead

if TYPE_CHECKING:
    from openbrain.conversation.tools.context import ToolContext

DESCRIPTION = (
    "Save the contact details of the person you are talking to, so the team can follow up. Needs an "
    "email address or a phone number. Call it again with new details to update them."
)
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[A-Za-z]{2,24}$")
_PHONE = re.compile(r"^\+?[0-9 ().-]{7,24}$")
MAX_FIELD_CHARS = 500


class LeadArgs(BaseModel):
    full_name: str | None = Field(None, description="the person's full name")
    first_name: str | None = None
    middle_name: str | None = None
    last_name: str | None = None
    email: str | None = Field(None, description="email address")
    phone: str | None = Field(None, description="phone number, digits with optional + ( ) - and spaces")
    date_of_birth: str | None = Field(None, description="YYYY-MM-DD")
    state_of_residence: str | None = None
    medications: list[str] | None = None
    notes: str | None = Field(None, description="anything else the team should know")


def _clean(fields: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """Normalised non-empty fields, or an error the model can act on."""
    values: dict[str, Any] = {}
    for name in LEAD_FIELDS:
        value = fields.get(name)
        if value is None:
            continue
        if name == "medications":
            items = [str(item).strip()[:MAX_FIELD_CHARS] for item in value if str(item).strip()]
            if items:
                values[name] = items
            continue
        text = str(value).strip()[:MAX_FIELD_CHARS]
        if text:
            values[name] = text
    if "email" in values:
        values["email"] = values["email"].lower()
        if not _EMAIL.match(values["email"]):
            return values, f"{values['email']!r} is not a valid email address; ask for it again."
    if "phone" in values and not (_PHONE.match(values["phone"]) and sum(c.isdigit() for c in values["phone"]) >= 7):
        return values, f"{values['phone']!r} is not a valid phone number; ask for it again."
    full = values.get("full_name")
    if full and not ({"first_name", "last_name"} & values.keys()):
        parts = full.split()
        if len(parts) >= 2:
            values["first_name"], values["last_name"] = parts[0], parts[-1]
            if len(parts) > 2:
                values["middle_name"] = " ".join(parts[1:-1])
    elif not full and {"first_name", "last_name"} <= values.keys():
        values["full_name"] = " ".join(
            values[n] for n in ("first_name", "middle_name", "last_name") if values.get(n)
        )
    return values, None


def capture_lead(context: ToolContext, tool_call_id: str, **fields: Any) -> str:
    values, problem = _clean(fields)
    if problem:
        return problem
    lead = context.current_lead()
    event: LeadCaptured | LeadUpdated
    if lead is None:
        if not ({"email", "phone"} & values.keys()):
            return "Not saved: I need an email address or a phone number. Ask the person for one."
        lead = Lead(context.client_id, session_id=context.session_id, **values)
        context.lead_id = lead.lead_id
        event = LeadCaptured(
            client_id=context.client_id, session_id=context.session_id, tool_call_id=tool_call_id,
            lead_id=lead.lead_id,
        )
        outcome = "Saved the contact details"
    else:
        changed = sorted(name for name, value in values.items() if getattr(lead, name) != value)
        if not changed:
            return "Those details were already saved; nothing changed."
        for name in changed:
            setattr(lead, name, values[name])
        context.lead_changes.update(changed)
        event = LeadUpdated(
            client_id=context.client_id, session_id=context.session_id, tool_call_id=tool_call_id,
            lead_id=lead.lead_id, changed_fields=changed,
        )
        outcome = f"Updated the contact details ({', '.join(changed)})"
    context.lead = lead
    context.emit(event)
    return f"{outcome}; the team will follow up."
