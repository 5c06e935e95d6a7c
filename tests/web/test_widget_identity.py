"""End-user identity through the widget, for real (docs/widget.md, End-user identity): Debian's chromium, a real
`ob-serve` whose demo client requires identity (`ob-admin client identity local --rotate --require` against its
store), and a test standing in for the client's server, which holds the identity secret and the server key: it
computes user hashes (HMAC-SHA256), mints widget tokens (`POST /widget-tokens`) and lists a user's sessions
(`GET /sessions?userId=`). The page hands what it got to the widget (`OpenBrain.identify`, or the tag's
`data-user-id` / `data-user-hash`), on ob-serve's own `/demo` and on a site of another origin (CORS), over the
WebSocket and over `POST /chat`.

The proof that an identity was verified is the server's, not the page's: the conversation is listed among that
user's sessions. Every test fails on a page error, a console error (but the 401s a test causes, which chromium
logs) or a traceback in ob-serve's output. The model is `offline` (no model key).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jwt
import pytest
from support.browser import TURN_MS, Served, WidgetPage, ob_serve, widget_page
from support.cli import BIN, TIMEOUT
from support.store import stop_store
from support.widget import ANSWER, GENEROUS, QUESTION, Site, page_html, put_limits

from openbrain.web import embed_tag

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = pytest.mark.e2e

SIGN_IN = "Please sign in to chat."  # the widget's state for `unauthorized`
NO_WEBSOCKET = "window.WebSocket = undefined"  # a browser or proxy without WebSockets: POST /chat
STORED_SESSION = "localStorage.getItem('openbrain:local:default')"
LEEWAY = 30  # seconds a token is still taken after its `exp` (services/identity.py)
DOCS = Path(__file__).resolve().parents[2] / "docs" / "widget.md"
RECORD_ERRORS = "() => { window.obErrors = []; OpenBrain.on('error', (error) => window.obErrors.push(error)); }"


def renewing_tokens() -> str:
    """docs/widget.md's example of a page renewing the token on `unauthorized`, as a function of the user that
    stands in `myServer.widgetToken()` for the page's call to its server (`newToken`, which the test exposes)."""
    blocks = re.findall(r"```js\n(.*?)```", DOCS.read_text(), re.S)
    example = next(block for block in blocks if 'code === "unauthorized"' in block)
    return f"(user) => {{ const myServer = {{widgetToken: () => window.newToken(user)}}; {example} }}"


@dataclass
class ClientServer:
    """What the client's own server does for its pages, with the identity secret and the server key."""

    served: Served
    secret: str

    def user_hash(self, user: str) -> str:
        return hmac.new(self.secret.encode(), user.encode(), hashlib.sha256).hexdigest()

    def token(self, user: str) -> str:
        """A widget token from `POST /widget-tokens`."""
        return str(self.call("POST", "/widget-tokens", {"userId": user, "ttlSeconds": 600})["token"])

    def signed_token(self, user: str, expires_in: float) -> str:
        """A token the client's server signs itself (docs/api.md), taken for `expires_in` more seconds (leeway
        included; negative: expired that long ago)."""
        expires = int(time.time() + expires_in) - LEEWAY
        key = hmac.new(b"openbrain-widget-token", self.secret.encode(), hashlib.sha256).digest()  # docs/api.md
        return jwt.encode({"sub": user, "cid": "local", "aud": "openbrain-widget", "iat": expires - 600,
                           "exp": expires}, key, algorithm="HS256")

    def sessions(self, user: str) -> list[str]:
        """The ids of `user`'s sessions, last updated first (`GET /sessions?userId=`)."""
        return [s["session_id"] for s in self.call("GET", f"/sessions?userId={user}")["sessions"]]

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        request = urllib.request.Request(self.served.url + path, method=method,
                                         data=None if body is None else json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json",
                                                  "x-api-key": self.served.api_key})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())


@pytest.fixture(scope="module")
def shop() -> Iterator[Site]:
    """A shop's site on another origin than ob-serve's: `/` embeds the widget; a test may add pages."""
    site = Site()
    with site.serving():
        yield site


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, shop: Site) -> Iterator[ClientServer]:
    """ob-serve on a store file, its demo client allowing the shop, requiring identity, with a new identity
    secret made by `ob-admin` against the same store."""
    home = tmp_path_factory.mktemp("ob-serve")
    store = home / "store.json"
    try:
        with ob_serve(home, "--origin", shop.origin, OB_MEMORY_STORE=str(store)) as served:
            env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
                   "HOME": str(home), "OB_MEMORY_STORE": str(store)}
            admin = subprocess.run([str(BIN / "ob-admin"), "--json", "client", "identity", "local", "--rotate",
                                    "--require"], capture_output=True, text=True, env=env, timeout=TIMEOUT)
            assert admin.returncode == 0, admin.stderr
            put_limits(served, GENEROUS)
            shop.pages["/"] = page_html(embed_tag(f"{served.url}/widget.js", served.widget_key)), {}
            yield ClientServer(served, json.loads(admin.stdout)["identity_secret"])
    finally:
        stop_store(store)


def transport_of(ui: WidgetPage) -> list[str]:
    """The list that records, from now on, each WebSocket the page opens and each `POST /chat` it makes."""
    used: list[str] = []
    ui.page.on("websocket", lambda socket: used.append("ws"))
    ui.page.on("request", lambda request: request.method == "POST" and request.url.endswith("/chat")
               and used.append("post"))
    return used


@pytest.mark.parametrize(("where", "websocket", "how"), [
    ("demo", True, "hash"), ("demo", False, "hash"), ("shop", True, "hash"), ("shop", False, "hash"),
    ("shop", True, "token"), ("shop", False, "token"), ("shop", True, "tag"), ("shop", False, "tag"),
])
def test_a_verified_visitor_chats_and_the_conversation_is_theirs(browser: Browser, client: ClientServer, shop: Site,
                                                                where: str, websocket: bool, how: str) -> None:
    from playwright.sync_api import expect

    served, user = client.served, f"user-{where}-{'ws' if websocket else 'http'}-{how}"
    url = f"{served.url}/demo" if where == "demo" else f"{shop.origin}/"
    if how == "tag":  # a page the client's server rendered for the signed-in visitor
        url = f"{shop.origin}/signed-in/{user}"
        shop.pages[f"/signed-in/{user}"] = page_html(
            f'<script src="{served.url}/widget.js" data-key="{served.widget_key}" data-user-id="{user}" '
            f'data-user-hash="{client.user_hash(user)}" defer></script>'), {}
    with widget_page(browser, url, init_script=None if websocket else NO_WEBSOCKET) as ui:
        used = transport_of(ui)

        # given the page identifying the visitor with what its server gave it
        if how == "hash":
            ui.page.evaluate("([userId, userHash]) => OpenBrain.identify({userId, userHash})",
                             [user, client.user_hash(user)])
        elif how == "token":
            ui.page.evaluate("(token) => OpenBrain.identify({token})", client.token(user))

        # when the visitor opens the chat and asks, then they are greeted and answered
        ui.open()
        ui.greeted()
        ui.chat(QUESTION, ANSWER)
        expect(ui.status).to_have_text("")
        assert used == (["ws"] if websocket else ["post", "post"]), used

        # and the server bound the conversation to that user: it is theirs in the client's listing
        assert client.sessions(user) == [ui.page.evaluate(STORED_SESSION)]


@pytest.mark.parametrize("websocket", [True, False], ids=["websocket", "post"])
@pytest.mark.parametrize("presented", ["nothing", "a wrong hash", "an id without its hash", "an expired token"])
def test_an_unverified_visitor_is_asked_to_sign_in_and_can_chat_once_identified(
        browser: Browser, client: ClientServer, shop: Site, websocket: bool, presented: str) -> None:
    from playwright.sync_api import expect

    user = f"late-{presented.replace(' ', '-')}-{websocket}"
    identity = {"nothing": None, "a wrong hash": {"userId": user, "userHash": client.user_hash("someone else")},
                "an id without its hash": {"userId": user},  # chatwoot/chatwoot#9493's case
                "an expired token": {"token": client.signed_token(user, expires_in=-5)}}[presented]
    with widget_page(browser, f"{shop.origin}/", init_script=None if websocket else NO_WEBSOCKET) as ui:
        used = transport_of(ui)
        ui.page.evaluate(RECORD_ERRORS)
        if identity:
            ui.page.evaluate("(who) => OpenBrain.identify(who)", identity)

        # when the visitor opens the chat, then the widget asks them to sign in, greets nobody, and says why
        ui.open()
        expect(ui.status).to_have_text(SIGN_IN, timeout=TURN_MS)
        expect(ui.page.locator("openbrain-widget")).to_have_attribute("data-state", "unauthorized")
        expect(ui.send_button).to_be_disabled()
        expect(ui.messages("assistant")).to_have_count(0)
        errors = ui.page.evaluate("window.obErrors")
        assert [error["code"] for error in errors] == ["unauthorized"], errors
        # (over the WebSocket the refused ack is not tried again over POST /chat, which would refuse it too)
        assert used == (["ws"] if websocket else ["post"]), used
        if not websocket:
            assert ui.forgive(401) == 1, ui.errors

        # when the page identifies the visitor, then the widget greets them and they chat
        ui.page.evaluate("([userId, userHash]) => OpenBrain.identify({userId, userHash})",
                         [user, client.user_hash(user)])
        ui.greeted()
        expect(ui.status).to_have_text("")
        ui.chat(QUESTION, ANSWER)
        assert client.sessions(user) == [ui.page.evaluate(STORED_SESSION)]


@pytest.mark.parametrize("websocket", [True, False], ids=["websocket", "post"])
def test_a_token_that_expires_mid_conversation_is_renewed_by_the_page_and_the_conversation_goes_on(
        browser: Browser, client: ClientServer, shop: Site, websocket: bool) -> None:
    from playwright.sync_api import expect

    user = f"expiring-{websocket}"
    with widget_page(browser, f"{shop.origin}/", init_script=None if websocket else NO_WEBSOCKET) as ui:
        # given a page that renews the token on `unauthorized`, and a conversation under a token of the user
        ui.page.expose_function("newToken", client.token)
        ui.page.evaluate(RECORD_ERRORS)
        ui.page.evaluate(renewing_tokens(), user)
        ui.page.evaluate("(token) => OpenBrain.identify({token})", client.token(user))
        ui.open()
        ui.greeted()
        assert ui.page.evaluate("window.obErrors") == []
        session = ui.page.evaluate(STORED_SESSION)

        # when the page's token is one whose time is up (the server's clock is not the test's to move: the page
        # holds one the client's server signed to have expired a minute ago) and the visitor sends a message
        ui.page.evaluate("(token) => OpenBrain.identify({token})", client.signed_token(user, expires_in=-60))
        ui.send(QUESTION)

        # then the turn is refused (the message back in the composer), the page heard `unauthorized` and renewed
        # the token, and the visitor sends again into the same conversation
        expect(ui.composer).to_have_value(QUESTION, timeout=TURN_MS)
        expect(ui.send_button).to_be_enabled(timeout=TURN_MS)
        assert [error["code"] for error in ui.page.evaluate("window.obErrors")] == ["unauthorized"]
        ui.composer.press("Enter")
        expect(ui.messages("assistant").last).to_have_text(ANSWER, timeout=TURN_MS)
        expect(ui.messages("user")).to_have_text([QUESTION])
        assert ui.page.evaluate(STORED_SESSION) == session and client.sessions(user) == [session]
        if not websocket:
            assert ui.forgive(401) == 1, ui.errors


def test_a_verified_users_conversation_resumes_on_another_device(browser: Browser, client: ClientServer,
                                                                 shop: Site) -> None:
    from playwright.sync_api import expect

    user, url = "ada-two-devices", f"{shop.origin}/"
    # given a conversation of a signed-in user on their laptop
    with widget_page(browser, url) as laptop:
        laptop.page.evaluate("(token) => OpenBrain.identify({token})", client.token(user))
        laptop.open()
        laptop.greeted()
        laptop.chat(QUESTION, ANSWER)
        greeting = laptop.messages("assistant").first.inner_text()
        session = laptop.page.evaluate(STORED_SESSION)

    # when they sign in on their phone (no stored session there), and the page resumes the conversation its
    # server lists as theirs
    assert client.sessions(user) == [session]
    with widget_page(browser, url) as phone:
        assert phone.page.evaluate(STORED_SESSION) is None
        phone.page.evaluate("(token) => OpenBrain.identify({token})", client.token(user))
        phone.page.evaluate("(id) => OpenBrain.resume(id)", session)

        # then the conversation shows, and goes on there
        expect(phone.dialog).to_be_visible()
        expect(phone.messages("user")).to_have_text([QUESTION], timeout=TURN_MS)
        expect(phone.messages("assistant")).to_have_text([greeting, ANSWER])
        phone.chat("what is 2 + 3", "2 + 3 = 5")
        assert phone.page.evaluate(STORED_SESSION) == session and client.sessions(user) == [session]

    # and another user resuming it gets a conversation of their own instead (theirs is not_found: 404)
    with widget_page(browser, url) as stranger:
        stranger.page.evaluate("(token) => OpenBrain.identify({token})", client.token("eve"))
        stranger.page.evaluate("(id) => OpenBrain.resume(id)", session)
        stranger.greeted()
        expect(stranger.messages("assistant")).to_have_text([greeting])
        expect(stranger.messages("user")).to_have_count(0)
        assert client.sessions("eve") == [stranger.page.evaluate(STORED_SESSION)] != [session]
        assert stranger.forgive(404) == 1, stranger.errors
