"""The whole stack on one machine, over real HTTP: `ob-serve` against a moto server that `ob-admin init`
prepared, a client created with `ob-admin`, and a test HTTP server as the client's webhook.

reset -> chat -> lead captured -> signed webhook; webhook down -> retries -> DLQ -> webhook fixed ->
`ob-admin dlq redrive` -> delivered exactly once; CORS preflights; 401/403/404 across tenants.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from support.cli import BIN, free_port, serving, wait_for
from support.targets import verified

pytestmark = pytest.mark.e2e

SECRET = "whsec_ZTJlLXNpZ25pbmctc2VjcmV0LTAxMjM0NTY3"
SECRET_REF = "ssm:/openbrain/webhooks/acme"
ORIGIN = "https://shop.example"


class Webhook:
    """A client's CRM: records every POST and answers with `status`."""

    def __init__(self) -> None:
        self.status = 200
        self.received: list[dict[str, Any]] = []
        webhook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                headers = {k.lower(): v for k, v in self.headers.items()}
                webhook.received.append({"headers": headers, "body": body, "status": webhook.status})
                self.send_response(webhook.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def delivered(self, key: str) -> list[dict[str, Any]]:
        return [r for r in self.received if r["headers"].get("webhook-id") == key
                and r["status"] == 200]


class Stack:
    def __init__(self, env: dict[str, str], url: str, keys: dict[str, str], webhook: Webhook) -> None:
        self.env, self.url, self.keys, self.webhook = env, url, keys, webhook

    def request(self, method: str, path: str, body: Any = None, key: str | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if key:
            request.add_header("x-api-key", key)
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                raw, status, got = response.read(), response.status, dict(response.headers)
        except urllib.error.HTTPError as error:
            raw, status, got = error.read(), error.code, dict(error.headers)
        return status, got, json.loads(raw) if raw else None

    def admin(self, *args: str) -> Any:
        result = subprocess.run([str(BIN / "ob-admin"), "--json", *args], capture_output=True, text=True,
                                env=self.env, timeout=120)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    home = tmp_path_factory.mktemp("e2e-home")
    moto_port = free_port()
    endpoint = f"http://127.0.0.1:{moto_port}"
    env = {
        "PATH": os.environ.get("PATH", ""), "HOME": str(home), "OB_BACKEND": "aws",
        "AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "e2e", "AWS_SECRET_ACCESS_KEY": "e2e",
        "AWS_REGION": "us-east-1", "OB_MEMORY_STORE": "none", "GRADIO_ANALYTICS_ENABLED": "False",
    }
    moto = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(moto_port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: _reachable(moto_port), 30, "the moto server")
        webhook = Webhook()
        stack = Stack(env, "", {}, webhook)
        stack.admin("init")
        boto3.client("ssm", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="e2e",
                     aws_secret_access_key="e2e").put_parameter(
            Name=SECRET_REF.removeprefix("ssm:"), Value=SECRET, Type="SecureString")
        stack.keys["acme"] = stack.admin("client", "create", "Acme", "--client-id", "acme", "--origin", ORIGIN,
                                         "--webhook", webhook.url, "--webhook-secret-ref", SECRET_REF)["api_key"]
        stack.keys["other"] = stack.admin("client", "create", "Other", "--client-id", "other")["api_key"]
        # no model key here: acme's default profile runs the offline model (kept in git as YAML, say)
        profile = home / "acme.json"
        profile.write_text(json.dumps({"client_id": "acme", "profiles": {"default": {"model": "offline"}}}))
        stack.admin("config", "import", str(profile))
        with serving("ob-serve", "--port", "0", "--retry-after", "1", "--poll-interval", "0.2", env=env,
                     log=home / "ob-serve.log") as stack.url:
            yield stack
    finally:
        moto.terminate()
        moto.wait(timeout=30)


def _reachable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def capture_lead(stack: Stack, email: str) -> dict[str, Any]:
    status, headers, started = stack.request("POST", "/chat", {"reset": True}, key=stack.keys["acme"])
    assert status == 200 and started["message"]
    assert "Session=" in headers.get("Set-Cookie", "")
    status, _, reply = stack.request("POST", "/chat", {"sessionId": started["session_id"],
                                                      "message": f"I'm Ada Lovelace, email {email}"},
                                     key=stack.keys["acme"])
    assert status == 200, reply
    assert [e["type"] for e in reply["events"]] == ["lead.captured.v1"]
    return reply


def idempotency_key_of(stack: Stack, email: str) -> str:
    return wait_for(lambda: next((r["headers"]["webhook-id"] for r in stack.webhook.received
                                  if json.loads(r["body"])["lead"]["email"] == email), None),
                    30, f"a webhook call for {email}")


def test_a_captured_lead_reaches_the_clients_webhook_signed(stack: Stack) -> None:
    # when a visitor leaves their email in a chat over HTTP
    capture_lead(stack, "ada@example.com")
    # then the client's webhook receives the lead, signed with the client's secret
    key = idempotency_key_of(stack, "ada@example.com")
    call = wait_for(lambda: stack.webhook.delivered(key), 30, "the delivery")[0]
    assert verified(call["body"], call["headers"], SECRET)["lead"]["email"] == "ada@example.com"
    assert call["headers"]["x-openbrain-event"] == "lead.captured.v1"
    body = json.loads(call["body"])
    assert body["lead"]["email"] == "ada@example.com" and body["lead"]["client_id"] == "acme"


def test_a_failing_webhook_dead_letters_and_a_redrive_delivers_exactly_once(stack: Stack) -> None:
    # given the client's webhook is down
    stack.webhook.status = 500
    capture_lead(stack, "bob@example.com")
    key = idempotency_key_of(stack, "bob@example.com")
    # when it has failed every retry, the event sits in the dead-letter queue
    dead = wait_for(lambda: [d for d in stack.admin("dlq", "list", "lead-webhook") if d["idempotency_key"] == key],
                    60, "the event in the DLQ")
    assert dead[0]["event_type"] == "lead.captured.v1" and dead[0]["client_id"] == "acme"
    attempts = [r for r in stack.webhook.received if r["headers"]["webhook-id"] == key]
    assert len(attempts) >= 5 and not stack.webhook.delivered(key)
    # and once the webhook is fixed, a redrive delivers it, once
    stack.webhook.status = 200
    moved = stack.admin("dlq", "redrive", "lead-webhook")
    assert moved[0]["moved"] >= 1
    wait_for(lambda: stack.webhook.delivered(key), 30, "the redriven delivery")
    time.sleep(3)  # a second delivery would have happened by now
    assert len(stack.webhook.delivered(key)) == 1
    assert not [d for d in stack.admin("dlq", "list", "lead-webhook") if d["idempotency_key"] == key]


def test_cors_preflight_answers_allowed_origins_only(stack: Stack) -> None:
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type,x-api-key"}
    _, allowed, _ = stack.request("OPTIONS", "/chat", headers={"Origin": ORIGIN, **preflight})
    assert allowed.get("Access-Control-Allow-Origin") == ORIGIN
    _, refused, _ = stack.request("OPTIONS", "/chat", headers={"Origin": "https://evil.example", **preflight})
    assert "Access-Control-Allow-Origin" not in refused


def test_keys_bind_callers_to_their_own_client(stack: Stack) -> None:
    status, _, body = stack.request("POST", "/chat", {"message": "hi"})
    assert status == 401 and body["error"]["code"] == "unauthorized"
    status, _, body = stack.request("POST", "/chat", {"clientId": "acme", "message": "hi"}, key=stack.keys["other"])
    assert status == 403 and body["error"]["code"] == "forbidden"
    session_id = capture_lead(stack, "carol@example.com")["session_id"]
    status, _, body = stack.request("GET", f"/sessions/{session_id}", key=stack.keys["other"])
    assert status == 404 and body["error"]["code"] == "not_found"
    status, _, body = stack.request("GET", f"/sessions/{session_id}", key=stack.keys["acme"])
    assert status == 200 and body["profile_name"] == "default"


def test_the_tuner_on_the_same_endpoint_sees_the_apis_sessions_and_its_saves_reach_the_api(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from openbrain.aws.backend import Backend, set_backend
    from openbrain.core.settings import Settings
    from openbrain.tuner.workbench import Pair, Workbench

    # given: a conversation over HTTP that captured a lead, and the tuner on OB_BACKEND=aws, same endpoint
    session_id = capture_lead(stack, "dora@example.com")["session_id"]
    for name in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"):
        monkeypatch.setenv(name, stack.env[name])
    backend = Backend(Settings(backend="aws")).start()
    previous = set_backend(backend)
    try:
        bench = Workbench(backend)

        # then: its inspector shows that session, with its lead and event
        assert session_id in [row["session_id"] for row in bench.recent_sessions("acme")]
        detail = bench.session("acme", session_id)
        assert detail.lead and detail.lead["email"] == "dora@example.com"
        assert [event["type"] for event in detail.events] == ["lead.captured.v1"]

        # and a profile saved in the tuner is what the API serves and chats with
        loaded = bench.load("acme", "default")
        saved = bench.save("acme", "default", {**loaded.values, "icebreaker": "Hello from the tuner."},
                           loaded.version)
        status, _, body = stack.request("GET", "/agent-configs/default", key=stack.keys["acme"])
        assert status == 200 and body["icebreaker"] == "Hello from the tuner." and body["version"] == saved.version
        status, _, started = stack.request("POST", "/chat", {"reset": True}, key=stack.keys["acme"])
        assert status == 200 and started["message"] == "Hello from the tuner."

        # and its playground runs real turns on that endpoint
        *_, (edited, as_saved, _) = bench.compare("acme", "default", saved.values, {}, saved.version, Pair(),
                                                  "what is 6*7")
        assert "42" in edited.reply and "42" in as_saved.reply
    finally:
        set_backend(previous)
        backend.close()
