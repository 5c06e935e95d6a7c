"""Who may reach `ob-tuner`: the password rule, and the Host check that keeps web pages out.

- Listening on loopback without `OB_TUNER_PASSWORD`, the page is open to this machine. A web page the
  operator visits could still reach it by DNS rebinding (its own host name resolving to 127.0.0.1), so
  `HostGuard` answers only requests addressed to a loopback name (`Host: 127.0.0.1:7860`, `localhost`,
  `[::1]`): a rebinding page's requests carry its own host name and get 421.
- Anywhere else a login is required; it also guards loopback when a password is set.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from openbrain.core.errors import ConfigurationError

MIN_PASSWORD_CHARS = 12

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def is_loopback(host: str) -> bool:
    """`localhost`, or an IPv4/IPv6 loopback address (127.0.0.0/8, ::1), with or without brackets."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def access(host: str, user: str, password: str | None) -> tuple[str, str] | None:
    """The login gradio should ask for: none on loopback without a password, else (user, password).
    A non-loopback address without a (long enough) password is a `ConfigurationError`."""
    if password is None:
        if is_loopback(host):
            return None
        raise ConfigurationError(
            f"--host {host} makes the tuner reachable from other machines; set OB_TUNER_PASSWORD (at least "
            f"{MIN_PASSWORD_CHARS} characters) to require a login, or listen on 127.0.0.1"
        )
    if len(password) < MIN_PASSWORD_CHARS:
        raise ConfigurationError(f"OB_TUNER_PASSWORD must be at least {MIN_PASSWORD_CHARS} characters")
    return user, password


def host_name(header: str) -> str:
    """The host of a `Host` header, without its port: `127.0.0.1:7860` -> `127.0.0.1`, `[::1]:80` -> `::1`."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class HostGuard:
    """ASGI middleware: refuse (421) any request whose `Host` is not a loopback name."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            headers = dict(scope.get("headers") or [])
            if not is_loopback(host_name(headers.get(b"host", b"").decode("latin-1"))):
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1008})
                    return
                body = b"ob-tuner answers only requests to a loopback address (Host header refused)\n"
                headers_out = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
                await send({"type": "http.response.start", "status": 421, "headers": headers_out})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
