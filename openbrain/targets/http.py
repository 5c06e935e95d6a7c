"""POST a JSON body to a client's webhook with the standard library (no HTTP dependency in a target).

Redirects are not followed (urllib would turn a POST into a body-less GET on a 302 and "succeed"): a 3xx
is an answer like any other non-2xx. Only `https` URLs are accepted, and `http` to loopback hosts (local
stacks, tests): a lead's personal data never crosses a network in clear text. Errors name the webhook's
host only: a URL's path or query string may carry a token.
"""

from __future__ import annotations

import http.client
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from openbrain.core.errors import ConfigurationError, UpstreamError, UpstreamTimeoutError
from openbrain.domain.urls import plain_enough, webhook_host

MAX_RESPONSE_BYTES = 64 * 1024


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # urllib then raises HTTPError with the 3xx status


_opener = urllib.request.build_opener(_NoRedirects)


def check_webhook_url(url: str) -> None:
    """Raise `ConfigurationError` unless `url` is https (or http to a loopback host)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if not plain_enough(parts.scheme, host):
        raise ConfigurationError(f"the webhook URL for host {host or '?'} must be https (http only to loopback)")


def post_json(url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
    """POST `body` and return the HTTP status (any status, 3xx-5xx included). Raises `UpstreamTimeoutError`
    when the webhook does not answer within `timeout` seconds, `UpstreamError` when it cannot be reached."""
    check_webhook_url(url)
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 (checked above)
    try:
        with _opener.open(request, timeout=timeout) as response:
            response.read(MAX_RESPONSE_BYTES)
            return int(response.status)
    except urllib.error.HTTPError as exc:
        exc.close()
        return int(exc.code)
    except TimeoutError as exc:
        raise UpstreamTimeoutError(f"the webhook at {webhook_host(url)} did not answer in {timeout:g} s") from exc
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        reason = getattr(exc, "reason", None) or type(exc).__name__
        if isinstance(reason, TimeoutError):
            raise UpstreamTimeoutError(f"the webhook at {webhook_host(url)} did not answer in {timeout:g} s") from exc
        raise UpstreamError(f"the webhook at {webhook_host(url)} cannot be reached ({type(exc).__name__})") from exc
