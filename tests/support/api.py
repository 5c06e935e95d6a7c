"""Drive the chat API's Lambda handler in-process with API Gateway REST (v1 proxy) events, as API Gateway does."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from openbrain.api.app import handler
from openbrain.storage.orm import Client

ACME_ORIGIN = "https://www.acme.example"
GLOBEX_ORIGIN = "https://globex.example"
_UNSET: Any = object()


@dataclass
class LambdaContext:
    """The attributes of the Lambda runtime's context object that handlers read."""

    function_name: str = "openbrain-chat-api"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:openbrain-chat-api"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    remaining_ms: int = 29_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def rest_event(
    method: str,
    path: str,
    *,
    body: str | None = None,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    base64_body: bool = False,
) -> dict[str, Any]:
    """An API Gateway REST API proxy event (payload format 1.0) as a `/{proxy+}` resource delivers it."""
    headers = {
        "Accept": "application/json",
        "Host": "abc123.execute-api.us-east-1.amazonaws.com",
        "User-Agent": "pytest",
        "X-Forwarded-For": "203.0.113.9",
        "X-Forwarded-Proto": "https",
        **(headers or {}),
    }
    if base64_body and body is not None:
        body = base64.b64encode(body.encode()).decode()
    request_id = str(uuid.uuid4())
    return {
        "resource": "/{proxy+}" if path != "/" else "/",
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": {"proxy": path.lstrip("/")} if path != "/" else None,
        "stageVariables": None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "httpMethod": method,
            "identity": {"sourceIp": "203.0.113.9", "userAgent": "pytest"},
            "path": f"/prod{path}",
            "protocol": "HTTP/1.1",
            "requestId": request_id,
            "requestTimeEpoch": 1_700_000_000_000,
            "resourcePath": "/{proxy+}",
            "stage": "prod",
        },
        "body": body,
        "isBase64Encoded": base64_body,
    }


@dataclass
class HttpResponse:
    status: int
    body: str
    headers: dict[str, list[str]]

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        for key, values in self.headers.items():
            if key.lower() == name.lower():
                return ", ".join(values)
        return None

    @property
    def error(self) -> dict[str, str]:
        """The `{"code", "message"}` of an error body (asserting the body has exactly that shape)."""
        body = self.json
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
        return body["error"]


@dataclass
class Api:
    """Calls `handler` the way API Gateway does; `key` is sent as `x-api-key` unless overridden."""

    key: str | None = None
    context: LambdaContext = field(default_factory=LambdaContext)

    def call(
        self,
        method: str,
        path: str,
        json_body: Any = _UNSET,
        *,
        raw_body: str | None = None,
        key: str | None = _UNSET,
        headers: dict[str, str] | None = None,
        query: dict[str, str] | None = None,
        base64_body: bool = False,
    ) -> HttpResponse:
        sent = dict(headers or {})
        api_key = self.key if key is _UNSET else key
        if api_key is not None:
            sent["x-api-key"] = api_key
        body = raw_body
        if json_body is not _UNSET:
            body = json.dumps(json_body)
        if body is not None:
            sent.setdefault("Content-Type", "application/json")
        event = rest_event(method, path, body=body, headers=sent, query=query, base64_body=base64_body)
        # what API Gateway would send on: the result must be JSON-serialisable as a whole
        result = json.loads(json.dumps(handler(event, self.context)))
        assert set(result) <= {"statusCode", "body", "isBase64Encoded", "multiValueHeaders", "headers"}
        text = result["body"] or ""
        if result.get("isBase64Encoded"):
            text = base64.b64decode(text).decode()
        headers_out = {k: [v] for k, v in (result.get("headers") or {}).items()}
        headers_out.update(result.get("multiValueHeaders") or {})
        return HttpResponse(result["statusCode"], text, headers_out)

    def get(self, path: str, **kwargs: Any) -> HttpResponse:
        return self.call("GET", path, **kwargs)

    def post(self, path: str, json_body: Any = _UNSET, **kwargs: Any) -> HttpResponse:
        return self.call("POST", path, json_body, **kwargs)

    def put(self, path: str, json_body: Any = _UNSET, **kwargs: Any) -> HttpResponse:
        return self.call("PUT", path, json_body, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> HttpResponse:
        return self.call("DELETE", path, **kwargs)

    def options(self, path: str, **kwargs: Any) -> HttpResponse:
        return self.call("OPTIONS", path, key=None, **kwargs)


@dataclass
class Tenant:
    """A client as a caller knows it: its id, an API key and the origin its pages are served from."""

    client_id: str
    key: str
    origin: str


def make_client(client_id: str, origins: list[str]) -> tuple[Client, str]:
    """A stored Client allowing `origins`, and its API key."""
    client = Client(client_id, display_name=client_id.title(), allowed_origins=origins)
    api_key = client.add_api_key()
    client.save()
    return client, api_key
