"""Webhook signatures (openbrain/targets/signing.py): what a receiving CRM recomputes."""

from __future__ import annotations

import hashlib
import hmac

from openbrain.targets.signing import sign, verify


def test_the_signature_is_sha256_hmac_hex_of_the_exact_body() -> None:
    body = '{"lead":{"full_name":"Zoë"}}'.encode()

    assert sign(body, "s3cret") == "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()


def test_verify_refuses_another_body_secret_or_format() -> None:
    body = b'{"a":1}'
    signature = sign(body, "s3cret")

    assert verify(body, "s3cret", signature)
    assert not verify(b'{"a": 1}', "s3cret", signature)
    assert not verify(body, "other", signature)
    assert not verify(body, "s3cret", signature.removeprefix("sha256="))
    assert not verify(body, "s3cret", "")
