"""`ob-admin client identity CLIENT`: `--rotate` stores a new identity secret in SSM (the embedded store keeps it)
and prints it once; `--require` / `--no-require` toggle enforcement; `ob-serve` verifies the printed secret's
hashes and, enforcing, refuses a widget request without one."""

from __future__ import annotations

import hashlib
import hmac
import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from support.cli import Cli, assert_one_line_error, serving
from support.store import stop_store

pytestmark = pytest.mark.e2e


def _admin(cli: Cli, *args: str) -> Any:
    result = cli.run("ob-admin", "--json", *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _chat(url: str, key: str, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url + "/chat", method="POST", data=json.dumps({"message": "hi"}).encode(),
                                     headers={"content-type": "application/json", "x-api-key": key, **headers})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def test_a_rotated_secret_is_printed_once_verifies_users_and_can_be_required(cli: Cli) -> None:
    created = _admin(cli, "client", "create", "Acme", "--client-id", "acme")
    profile = cli.home / "acme.json"
    profile.write_text(json.dumps({"client_id": "acme", "profiles": {"default": {"model": "offline"}}}))
    _admin(cli, "config", "import", str(profile))

    # requiring identity needs a secret first
    result = cli.run("ob-admin", "client", "identity", "acme", "--require")
    assert_one_line_error(result, "ob-admin", "client 'acme' has no identity secret yet")

    # when: a secret is made and enforcement turned on, in one command
    shown = _admin(cli, "client", "identity", "acme", "--rotate", "--require")
    secret = shown["identity_secret"]
    assert secret.startswith("obid_") and shown["identity_required"] is True
    assert shown["identity_secret_ref"].startswith("ssm:/openbrain/dev/identity/acme/")
    # then: never shown again
    for args in (("client", "identity", "acme"), ("client", "show", "acme")):
        again = cli.run("ob-admin", "--json", *args)
        assert secret not in again.stdout and json.loads(again.stdout)["identity_required"] is True
    text = cli.run("ob-admin", "client", "identity", "acme", "--rotate")
    assert "identity_secret " in text.stdout and "shown only this once" in text.stderr
    secret = text.stdout.split("identity_secret ")[1].split()[0]
    stop_store(cli.store)  # the next process starts the store afresh from its file: the secret must be in it

    digest = hmac.new(secret.encode(), b"ada", hashlib.sha256).hexdigest()
    with serving("ob-serve", "--port", "0", env=cli.env, log=cli.home / "ob-serve.log") as url:
        widget = created["widget_key"]
        assert _chat(url, widget, {"x-user-id": "ada", "x-user-hash": digest}) == 200
        assert _chat(url, widget, {"x-user-id": "ada"}) == 401  # chatwoot/chatwoot#9493's case
        assert _chat(url, widget, {}) == 401
        assert _admin(cli, "client", "identity", "acme", "--no-require")["identity_required"] is False
        assert _chat(url, widget, {}) == 200
