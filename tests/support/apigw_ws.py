"""The events API Gateway's WebSocket API sends a Lambda (a proxy integration), for the handler tests and the
bench (`bench/stream_latency.py`): `ws_event("$connect" | "$default" | "$disconnect", connection_id, ...)`."""

from __future__ import annotations

import time
import uuid
from typing import Any

DOMAIN = "abc123.execute-api.us-east-1.amazonaws.com"
STAGE = "dev"
ENDPOINT = f"https://{DOMAIN}/{STAGE}"


def ws_event(route: str, connection_id: str, body: str | None = None, *, headers: dict[str, str] | None = None,
             query: dict[str, str] | None = None) -> dict[str, Any]:
    """An API Gateway WebSocket event (a Lambda proxy integration) for `route`."""
    kind = {"$connect": "CONNECT", "$disconnect": "DISCONNECT"}.get(route, "MESSAGE")
    event: dict[str, Any] = {"requestContext": {
        "routeKey": route, "eventType": kind, "connectionId": connection_id, "domainName": DOMAIN, "stage": STAGE,
        "apiId": "abc123", "requestId": str(uuid.uuid4()), "messageDirection": "IN", "extendedRequestId": "x",
        "requestTimeEpoch": int(time.time() * 1000), "connectedAt": int(time.time() * 1000),
        "identity": {"sourceIp": "203.0.113.9"}}, "isBase64Encoded": False}
    if route == "$connect":
        all_headers = {"Host": DOMAIN, "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                       **(headers or {})}
        event |= {"headers": all_headers, "multiValueHeaders": {k: [v] for k, v in all_headers.items()},
                  "queryStringParameters": query, "multiValueQueryStringParameters":
                      {k: [v] for k, v in query.items()} if query else None}
    elif route == "$default":
        event["requestContext"]["messageId"] = str(uuid.uuid4())
        event["body"] = body
    else:
        event["requestContext"] |= {"disconnectStatusCode": 1000, "disconnectReason": ""}
    return event
