"""Webhook signatures: `sha256=<hex HMAC-SHA256 of the exact body bytes>` with the client's signing secret."""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_PREFIX = "sha256="


def sign(body: bytes, secret: str) -> str:
    """The `X-OpenBrain-Signature` value for `body`."""
    return SIGNATURE_PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(body: bytes, secret: str, signature: str) -> bool:
    """Whether `signature` is `body`'s signature with `secret` (constant-time; what a receiver does)."""
    return hmac.compare_digest(sign(body, secret), signature or "")
