"""A scheduled message pushed to an open conversation shows in the chat widget (docs/widget.md, Scheduled
messages), in Debian's chromium against a real `ob-serve` on a store file: the test attaches to the same store
and pushes the frame as the scheduler does (`openbrain.aws.connections.push`), through ob-serve's loopback
Management API, or runs the scheduler's pass itself on a `dps` command the visitor typed. Fails on any page
error, console error or traceback (support/browser.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from support.backend import installed_backend
from support.browser import TURN_MS, Served, WidgetPage, ob_serve, widget_page
from support.store import stop_store

from openbrain.aws.connections import push
from openbrain.core.clock import utcnow
from openbrain.core.ids import new_id
from openbrain.core.settings import Settings
from openbrain.services.schedules import deliver_due
from openbrain.services.sessions import session_schedules

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Route

    from openbrain.aws.backend import Backend

pytestmark = pytest.mark.e2e
STORE_KEY = "openbrain:local:default"  # where the widget keeps the demo client's session id


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "store.json"
    try:
        yield path
    finally:
        stop_store(path)


@pytest.fixture
def served(tmp_path: Path, store: Path) -> Iterator[Served]:
    """ob-serve on a store file (the offline model: no key)."""
    with ob_serve(tmp_path, OB_MEMORY_STORE=str(store)) as running:
        yield running


@pytest.fixture
def attached(served: Served, store: Path) -> Iterator[Backend]:
    """This process attached to ob-serve's store, as its scheduler would be."""
    with installed_backend(Settings(backend="memory", memory_store=store)) as attached:
        yield attached


def frame(session_id: str, text: str) -> dict[str, Any]:
    return {"type": "message", "text": text, "session_id": session_id, "scheduled": True,
            "schedule_id": new_id(), "role": "assistant"}


def record_messages(ui: WidgetPage) -> None:
    ui.page.evaluate("() => { window.obMessages = []; OpenBrain.on('message', (m) => window.obMessages.push(m)); }")


def test_a_pushed_scheduled_message_shows_after_a_turn_and_after_a_reload(browser: Browser, served: Served,
                                                                           attached: Backend) -> None:
    from playwright.sync_api import expect

    with widget_page(browser) as ui:
        # given: a visitor who chatted
        ui.goto(served.url + "/demo")
        record_messages(ui)
        ui.open()
        ui.greeted()
        ui.send("Remind me about the stand-up")
        expect(ui.messages("assistant")).to_have_count(2, timeout=TURN_MS)
        expect(ui.send_button).to_be_enabled(timeout=TURN_MS)
        session_id = ui.page.evaluate(f"localStorage.getItem({json.dumps(STORE_KEY)})")

        # when: the scheduler pushes a message to the session, no turn running
        assert push(attached, "local", session_id, frame(session_id, "Time for the **stand-up**")) == 1

        # then: it shows as the assistant's newest message, in the conversation's live region, and is reported
        expect(ui.messages("assistant").last).to_have_text("Time for the stand-up")
        expect(ui.page.get_by_role("log").locator("strong")).to_have_text("stand-up")
        assert ui.page.get_by_role("log").get_attribute("aria-live") == "polite"
        assert ui.page.evaluate("window.obMessages.at(-1)") == {
            "role": "assistant", "text": "Time for the **stand-up**", "sessionId": session_id, "scheduled": True}
        expect(ui.messages("user")).to_have_count(1)

        # given: the page reloaded, the stored transcript holding a scheduled prompt to the chatbot (a user
        # message the visitor never wrote) and the reply it got
        def with_scheduled_prompt(route: Route) -> None:
            response = route.fetch()
            session = response.json()
            session["messages"] += [{"role": "user", "content": "Ask how the stand-up went", "scheduled": True},
                                    {"role": "assistant", "content": "How did the stand-up go?", "scheduled": True}]
            route.fulfill(response=response, json=session)

        ui.page.route(f"**/sessions/{session_id}", with_scheduled_prompt)
        ui.page.reload()
        record_messages(ui)
        ui.open()

        # then: the reply shows, the prompt does not
        expect(ui.messages("assistant").last).to_have_text("How did the stand-up go?", timeout=TURN_MS)
        expect(ui.messages("user")).to_have_text(["Remind me about the stand-up"])

        # and the resumed conversation's socket hears the next push
        def pushed() -> int:
            return push(attached, "local", session_id, frame(session_id, "Stand-up in 5 minutes"))

        delivered = 0
        for _ in range(50):  # the socket opens and names its session just after the transcript shows
            delivered = pushed()
            if delivered:
                break
            ui.page.wait_for_timeout(100)
        assert delivered == 1
        expect(ui.messages("assistant").last).to_have_text("Stand-up in 5 minutes")
        assert ui.page.evaluate("window.obMessages.length") == 1


def test_a_visitor_schedules_with_dps_in_their_time_zone_and_the_answer_arrives_when_due(
        browser: Browser, served: Served, attached: Backend) -> None:
    from playwright.sync_api import expect

    with widget_page(browser, timezone_id="Asia/Tokyo") as ui:
        # given: a visitor in Tokyo types a dps command (Shift+Enter between its lines)
        ui.goto(served.url + "/demo")
        ui.open()
        ui.greeted()
        ui.composer.fill("dps c in 1 minute")
        ui.composer.press("Shift+Enter")
        ui.composer.type("what is 6 * 7")
        ui.composer.press("Enter")

        # then: the widget says what was scheduled, in the visitor's zone
        confirmation = ui.messages("assistant").last
        expect(confirmation).to_contain_text("Scheduled a message to the assistant", timeout=TURN_MS)
        expect(confirmation).to_contain_text("Asia/Tokyo")
        expect(ui.send_button).to_be_enabled(timeout=TURN_MS)
        session_id = ui.page.evaluate(f"localStorage.getItem({json.dumps(STORE_KEY)})")
        [waiting] = session_schedules(attached.stores, "local", session_id).schedules
        assert (waiting.timezone, waiting.recipient, waiting.prompt) == ("Asia/Tokyo", "chatbot", "what is 6 * 7")

        # when: its time comes (the scheduler's pass, run on ob-serve's store with the clock a minute on)
        [done] = deliver_due(attached, utcnow() + timedelta(minutes=1, seconds=1))

        # then: the answer arrives in the open panel, no turn asked for
        assert done.text and done.pushed == 1
        expect(ui.messages("assistant").last).to_have_text(done.text, timeout=TURN_MS)
        # and after a reload the transcript has it, without the scheduled prompt as something the visitor said
        ui.page.reload()
        ui.open()
        expect(ui.messages("assistant").last).to_have_text(done.text, timeout=TURN_MS)
        expect(ui.messages("user")).to_have_count(0)
