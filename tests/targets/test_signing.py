"""Webhook signatures (openbrain/targets/signing.py) as Standard Webhooks receivers check them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from standardwebhooks import WebhookVerificationError
from support.targets import SECRET, verified

from openbrain.core.clock import utcnow
from openbrain.targets.signing import signed_headers

BODY = b'{"lead": {"email": "ada@example.com"}}'


def test_a_signed_delivery_verifies_with_the_standard_webhooks_libraries() -> None:
    headers = signed_headers(SECRET, "5f0c1e2d3c4b5a69", BODY)

    assert verified(BODY, headers) == {"lead": {"email": "ada@example.com"}}
    assert headers["webhook-id"] == "5f0c1e2d3c4b5a69"
    assert headers["webhook-signature"].startswith("v1,")


@pytest.mark.parametrize("tamper", ["body", "id", "secret", "timestamp"])
def test_a_changed_delivery_is_refused(tamper: str) -> None:
    headers = signed_headers(SECRET, "5f0c1e2d3c4b5a69", BODY)
    body, secret = BODY, SECRET
    if tamper == "body":
        body = BODY.replace(b"ada", b"eve")
    elif tamper == "id":
        headers["webhook-id"] = "another-message"
    elif tamper == "secret":
        secret = "whsec_" + "QUJD" * 8
    else:
        headers["webhook-timestamp"] = str(int(headers["webhook-timestamp"]) - 1)

    with pytest.raises(WebhookVerificationError):
        verified(body, headers, secret)


def test_a_replayed_delivery_older_than_five_minutes_is_refused() -> None:
    captured = signed_headers(SECRET, "5f0c1e2d3c4b5a69", BODY, at=utcnow() - timedelta(minutes=5, seconds=30))

    with pytest.raises(WebhookVerificationError, match="too old"):
        verified(BODY, captured)
    assert verified(BODY, signed_headers(SECRET, "5f0c1e2d3c4b5a69", BODY, at=utcnow() - timedelta(minutes=4)))


def test_the_receiver_snippet_in_docs_targets_md_verifies_a_delivery() -> None:
    from pathlib import Path
    from types import SimpleNamespace

    text = (Path(__file__).resolve().parents[2] / "docs" / "targets.md").read_text()
    snippet = text.split("```python\n", 1)[1].split("```", 1)[0]
    request = SimpleNamespace(headers=signed_headers(SECRET, "5f0c1e2d3c4b5a69", BODY))
    scope = {"secret": SECRET, "request_body_bytes": BODY, "request": request}

    exec(snippet, scope)  # the documentation's own example, from this repository

    assert scope["lead"] == {"lead": {"email": "ada@example.com"}}
