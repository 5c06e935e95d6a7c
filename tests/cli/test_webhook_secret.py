"""`ob-admin` makes webhook signing secrets: `client create --webhook` without a reference and
`client rotate-webhook-secret` store a new `whsec_` secret in SSM (the embedded store keeps it across restarts),
print it once, and the lead deliveries `ob-serve` makes verify with it in a Standard Webhooks receiver."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from standardwebhooks import Webhook, WebhookVerificationError
from support.cli import Cli, assert_one_line_error, serving, wait_for
from support.store import stop_store

pytestmark = pytest.mark.e2e


class Receiver:
    """A client's CRM that verifies every delivery with the secret it was given: 204 if it verifies, else 401."""

    def __init__(self) -> None:
        self.secret = ""
        self.verified: list[tuple[str, dict[str, Any]]] = []  # (secret, payload)
        self.refused = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                try:
                    payload = Webhook(receiver.secret).verify(body, dict(self.headers.items()))
                except WebhookVerificationError:
                    receiver.refused += 1
                    self.send_response(401)
                else:
                    receiver.verified.append((receiver.secret, payload))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/leads"

    def delivered(self, email: str) -> tuple[str, dict[str, Any]] | None:
        return next(((s, p) for s, p in self.verified if p["lead"]["email"] == email), None)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.server.shutdown()


def _admin(cli: Cli, *args: str) -> Any:
    result = cli.run("ob-admin", "--json", *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _leave_lead(url: str, key: str, email: str) -> None:
    request = urllib.request.Request(url + "/chat", method="POST", headers={
        "content-type": "application/json", "x-api-key": key},
        data=json.dumps({"message": f"my name is Ada Lovelace, email {email}"}).encode())
    with urllib.request.urlopen(request, timeout=30) as response:
        assert [e["type"] for e in json.loads(response.read())["events"]] == ["lead.captured.v1"]


def test_a_made_secret_signs_deliveries_across_restarts_and_rotation(cli: Cli, receiver: Receiver) -> None:
    # given: a client created with a webhook and no secret reference
    created = _admin(cli, "client", "create", "Acme", "--client-id", "acme", "--webhook", receiver.url)
    first = created["webhook_secret"]
    assert first.startswith("whsec_") and created["webhook_secret_ref"] == "ssm:/openbrain/dev/webhooks/acme"
    shown = cli.run("ob-admin", "--json", "client", "show", "acme")
    assert first not in shown.stdout and json.loads(shown.stdout)["webhook_secret_ref"] == created["webhook_secret_ref"]
    profile = cli.home / "acme.json"
    profile.write_text(json.dumps({"client_id": "acme", "profiles": {"default": {"model": "offline"}}}))
    _admin(cli, "config", "import", str(profile))
    stop_store(cli.store)  # the next process starts the store afresh from its file: the secret must be in it
    receiver.secret = first

    with serving("ob-serve", "--port", "0", "--retry-after", "1", "--poll-interval", "0.2", env=cli.env,
                 log=cli.home / "ob-serve.log") as url:
        # when: a visitor leaves a lead; then: the delivery verifies with the secret printed at creation
        _leave_lead(url, created["api_key"], "ada@example.com")
        assert wait_for(lambda: receiver.delivered("ada@example.com"), 30, "the first delivery")[0] == first

        # when: the secret is rotated and the receiver given the new one
        rotated = _admin(cli, "client", "rotate-webhook-secret", "acme")
        second = rotated["webhook_secret"]
        assert second.startswith("whsec_") and second != first
        assert rotated["webhook_secret_ref"] == created["webhook_secret_ref"]
        receiver.secret = second

        # then: the next lead reaches it signed with the new secret (a delivery signed with the old one, cached by
        # the running target, is refused with 401, which makes the target read the secret again on its retry)
        _leave_lead(url, created["api_key"], "grace@example.com")
        assert wait_for(lambda: receiver.delivered("grace@example.com"), 60, "the delivery after rotation")[0] == second


def test_a_secret_that_cannot_be_stored_leaves_no_client(cli: Cli, receiver: Receiver) -> None:
    # SSM refuses parameter names under /ssm: the secret cannot be stored
    result = cli.run("ob-admin", "client", "create", "Acme", "--client-id", "acme", "--webhook", receiver.url,
                     OB_WEBHOOK_SECRETS_PATH="/ssm/webhooks")
    assert_one_line_error(result, "ob-admin", "could not store the secret ssm:/ssm/webhooks/acme (ValidationException)")
    assert _admin(cli, "client", "list") == []


def test_rotating_needs_a_webhook_url(cli: Cli, receiver: Receiver) -> None:
    _admin(cli, "client", "create", "Plain", "--client-id", "plain")
    result = cli.run("ob-admin", "client", "rotate-webhook-secret", "plain")
    assert_one_line_error(result, "ob-admin", "client 'plain' has no webhook URL; give one with --webhook URL")
    # with a URL given, the client gets both
    rotated = _admin(cli, "client", "rotate-webhook-secret", "plain", "--webhook", receiver.url)
    assert rotated["webhook_url"] == receiver.url and rotated["webhook_secret"].startswith("whsec_")
