"""`ob-tuner` in Debian's chromium: the installed console script serves the page, a headless browser
edits, tries and saves a profile the way a person would, and reads what the page shows.

Each test gets its own `ob-tuner` (embedded backend, no store file unless it shares one with `ob`), so none
sees another's saves or sessions. Every test also fails on what nobody should see (support/browser.py): a
gradio error toast or "Error" badge, a console or page error, a traceback in ob-tuner's output. Skipped only
where Playwright or /usr/bin/chromium is missing; `.ci/run` installs chromium.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from support.browser import LOAD_MS, SESSION_ID, TURN_MS, VIEWPORT, TunerPage, tuner
from support.cli import BIN, TIMEOUT
from support.fake_openai import FakeOpenAI, Reply
from support.store import stop_store

from openbrain.conversation.tools.registry import TOOLS
from openbrain.domain.profile import DEFAULT_CLIENT_ID, DEFAULT_PROFILE
from openbrain.storage.orm.agent_config import AgentConfig

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = pytest.mark.e2e

QUESTION = "what is (17 + 5) * 3"
FALLBACK = "openai:gpt-4o-mini → offline (no OPENAI_API_KEY)"  # the default profile's model without a key


@contextmanager
def page_on(browser: Browser, url: str) -> Iterator[TunerPage]:
    """A fresh browser context on the tuner at `url`, opened; fails if anything went wrong on the page."""
    context = browser.new_context(viewport=VIEWPORT)
    try:
        opened = TunerPage(context.new_page())
        opened.open(url)
        yield opened
        assert opened.errors == [], f"errors on the page: {opened.errors}"
    finally:
        context.close()


@pytest.fixture
def ui(browser: Browser, tmp_path: Path) -> Iterator[TunerPage]:
    """A fresh `ob-tuner` and a fresh browser context on it, opened at the default client's default profile."""
    with tuner(tmp_path) as url, page_on(browser, url) as opened:
        yield opened


def test_the_profile_editor_shows_the_loaded_profile(ui: TunerPage) -> None:
    from playwright.sync_api import expect

    # given the built-in default profile of the default client (nothing is stored yet)
    default = AgentConfig(DEFAULT_CLIENT_ID, DEFAULT_PROFILE)

    # then the editor shows its fields, and the checklist offers every tool with the profile's ones ticked
    expect(ui.page.locator("#status")).to_contain_text(f"{DEFAULT_CLIENT_ID} / {DEFAULT_PROFILE}")
    expect(ui.field("model")).to_have_value(default.model)
    expect(ui.field("system-message")).to_have_value(default.system_message)
    expect(ui.field("icebreaker")).to_have_value(default.icebreaker)
    tools = ui.tools()
    expect(tools).to_have_count(len(TOOLS))
    assert [box.get_attribute("name") for box in tools.all()] == list(TOOLS)
    assert [box.get_attribute("name") for box in tools.all() if box.is_checked()] == list(default.tools)


def test_a_playground_message_gets_a_reply_from_the_edited_and_the_saved_profile(ui: TunerPage) -> None:
    from playwright.sync_api import expect

    # when one message goes to both (with no model key, gpt-4o-mini falls back to the offline model)
    ui.send(QUESTION)

    # then each pane shows the question, the answer, and the tool call under it
    for side in ("edited", "saved"):
        pane = ui.page.locator(f"#{side}-chat")
        expect(pane.get_by_test_id("user")).to_have_text(QUESTION)
        expect(ui.replies(side)).to_have_text([re.compile(r"= 66\b"), "tools: calculator"], timeout=TURN_MS)
    expect(ui.page.locator("#status")).to_contain_text(f"{DEFAULT_CLIENT_ID} / {DEFAULT_PROFILE}")  # still shown

    # and the inspector lists the two sessions the turn made, each with its transcript
    rows = ui.sessions()
    expect(rows).to_have_count(2)
    for row in rows.all():
        expect(row.get_by_role("gridcell").nth(1)).to_have_text(DEFAULT_PROFILE)
        expect(row.get_by_role("gridcell").nth(2)).to_have_text("1")
    transcript = ui.show(rows.first)
    expect(ui.page.locator("#inspect-status")).to_contain_text("1 turn(s)")
    expect(transcript).to_contain_text(QUESTION)
    expect(transcript).to_contain_text("= 66")


STREAMED = "Streaming works: this reply arrives a few characters at a time, while you watch it grow."


def test_the_playground_shows_the_message_at_once_and_the_reply_as_it_streams(browser: Browser,
                                                                              tmp_path: Path) -> None:
    from playwright.sync_api import expect

    # given a model that waits a second, then writes its reply four characters every 50 ms (the default
    # profile's openai:gpt-4o-mini, served by a local OpenAI-compatible server)
    with FakeOpenAI() as server, tuner(tmp_path, OPENAI_BASE_URL=server.base_url) as url, \
            page_on(browser, url) as ui:
        server.always(Reply(STREAMED, delay=1.0, chunk_interval=0.05))

        # when a person sends a message
        ui.start_sending("tell me something")

        # then it is in both panes at once, before either reply starts, and the page says who is answering
        for side in ("edited", "saved"):
            expect(ui.page.locator(f"#{side}-chat").get_by_test_id("user")).to_have_text("tell me something")
        expect(ui.page.locator("#play-status")).to_contain_text("the edited profile is answering")
        expect(ui.replies("edited")).to_have_count(0)

        # and the edited side's reply grows on the page, each time a longer beginning of the reply
        seen: list[str] = []
        deadline = time.monotonic() + TURN_MS / 1000
        while STREAMED not in seen and time.monotonic() < deadline:
            texts = ui.replies("edited").all_inner_texts()
            if texts and texts[0].strip() and texts[0] not in seen:
                seen.append(texts[0])
            time.sleep(0.02)
        partial = [text for text in seen if text != STREAMED]
        assert len(partial) >= 2, f"the reply did not visibly grow: {seen}"
        assert all(STREAMED.startswith(text) for text in partial), seen
        assert [len(text) for text in partial] == sorted({len(text) for text in partial}), seen

        # and once both sides are done, each shows the reply as stored: the transcript the inspector reads back
        ui.wait_for_replies()
        for side in ("edited", "saved"):
            expect(ui.replies(side)).to_have_text([STREAMED])
        rows = ui.sessions()
        expect(rows).to_have_count(2)
        for row in rows.all():
            transcript = ui.show(row)
            expect(transcript.get_by_test_id("bot").last).to_have_text(STREAMED)
        assert len(server.requests) == 2 and all(request.stream for request in server.requests)


def test_saving_the_edited_profile_stores_version_1(ui: TunerPage) -> None:
    from playwright.sync_api import expect

    # given an edited model and system message
    ui.field("model").fill("offline")
    ui.field("system-message").fill("You answer in one short sentence.")

    # when saved
    ui.save()

    # then the page says so, and a fresh page loads the stored profile
    expect(ui.page.locator("#validation")).to_contain_text("saved as version 1")
    expect(ui.page.locator("#status")).to_contain_text(f"{DEFAULT_CLIENT_ID} / {DEFAULT_PROFILE} — version 1")
    ui.page.reload()
    expect(ui.page.locator("#status")).to_contain_text("version 1", timeout=LOAD_MS)
    expect(ui.field("model")).to_have_value("offline")
    expect(ui.field("system-message")).to_have_value("You answer in one short sentence.")


def test_an_unsaved_edit_changes_only_the_edited_sides_reply(ui: TunerPage) -> None:
    from playwright.sync_api import expect

    # given: the calculator is unticked in the editor, not saved
    ui.untick("calculator")

    # when
    ui.send(QUESTION)

    # then: the saved profile still computes; the edited one has no calculator to call
    expect(ui.replies("saved")).to_have_text([re.compile(r"= 66\b"), "tools: calculator"], timeout=TURN_MS)
    expect(ui.replies("edited")).to_have_count(1, timeout=TURN_MS)
    expect(ui.replies("edited")).not_to_contain_text("66")
    expect(ui.replies("edited")).to_contain_text(QUESTION)


def test_each_edit_is_validated_as_typed_and_names_the_model_that_runs(ui: TunerPage) -> None:
    from playwright.sync_api import expect

    # given the default profile, whose model runs offline here (no OPENAI_API_KEY)
    expect(ui.page.locator("#status")).to_contain_text(f"model {FALLBACK}")

    # when a person types in the system message
    ui.field("system-message").press_sequentially(" Be brief.")

    # then the line under the form says the edit is valid and which model it runs
    expect(ui.page.locator("#validation")).to_have_text(f"✓ valid · model {FALLBACK}")

    # and typing another model says so at once
    ui.retype("model", "offline")
    expect(ui.page.locator("#validation")).to_have_text("✓ valid · model offline")


OUT_OF_RANGE = [
    ("temperature", "3", "temperature must be between 0 and 2, got 3"),
    ("max-iterations", "0", "max_iterations must be between 1 and 50 (a whole number), got 0"),
    ("max-execution-time", "1000", "max_execution_time must be between 1 and 900, got 1000"),
    ("memory-window_messages", "1001", "memory.window_messages must be between 1 and 1000 (a whole number), got 1001"),
]


def test_an_out_of_range_number_is_the_schemas_message_in_the_page(browser: Browser, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    with tuner(tmp_path) as url:  # one tuner (nothing gets stored), a fresh page per field
        for box, value, message in OUT_OF_RANGE:
            with page_on(browser, url) as ui:
                # when a person types a number out of the field's range (its bounds are in the hint under it)
                if box.startswith("memory-"):
                    ui.page.get_by_text("Memory policy").click()
                number = ui.page.locator(f"#{box} input[type=number]")
                low_high = re.search(r"\d+(\.\d+)?–\d+", ui.page.locator(f"#{box}").inner_text())
                assert low_high, f"#{box} shows no bounds"
                number.fill(value)

                # then the page says what the profile schema says, where it shows its other messages (page_on
                # fails on gradio's own toast, `tuner` on a traceback)
                expect(ui.page.locator("#validation")).to_have_text(f"⚠ {message}")

                # and Save refuses it the same way, writing nothing
                ui.save()
                expect(ui.page.locator("#validation")).to_have_text(f"⚠ {message}")
                expect(ui.page.locator("#status")).to_contain_text("not stored yet")


def test_the_tuner_opens_on_public_with_the_sessions_ob_made_listed(browser: Browser, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    # given a store shared with `ob` and `ob-admin`: a client listed before `public`, and a turn of `ob`
    store = tmp_path / "store.json"
    env = {"PATH": str(BIN), "PYTHONPATH": os.environ.get("PYTHONPATH", ""), "HOME": str(tmp_path),
           "OB_MEMORY_STORE": str(store)}
    try:
        for command in (["ob-admin", "client", "create", "Acme"], ["ob", "what is 6 * 7"]):
            done = subprocess.run([str(BIN / command[0]), *command[1:]], capture_output=True, text=True, env=env,
                                  timeout=TIMEOUT)
            assert done.returncode == 0, done
        with tuner(tmp_path, OB_MEMORY_STORE=str(store)) as url, page_on(browser, url) as ui:
            # then it opens on `public`, where `ob`'s sessions are, and offers the other client too
            expect(ui.page.locator("#client input")).to_have_value(DEFAULT_CLIENT_ID)
            expect(ui.page.locator("#status")).to_contain_text(f"{DEFAULT_CLIENT_ID} / {DEFAULT_PROFILE}")
            ui.page.locator("#client input").click()
            expect(ui.page.get_by_role("option")).to_have_text([re.compile(r"\bacme$"),
                                                                re.compile(rf"\b{DEFAULT_CLIENT_ID}$")])
            ui.page.keyboard.press("Escape")

            # and the inspector already lists `ob`'s session, without a click on Refresh
            rows = ui.session_rows()
            expect(rows).to_have_count(1, timeout=LOAD_MS)
            expect(ui.page.locator("#inspect-status")).to_have_text("✓ 1 recent session(s)")

            # and shows it with the model its turns run
            transcript = ui.show(rows.first)
            expect(ui.page.locator("#inspect-status")).to_contain_text(f"1 turn(s), profile default, model {FALLBACK}")
            expect(transcript).to_contain_text("42")
    finally:
        stop_store(store)


def test_a_dps_command_typed_in_the_playground_is_listed_in_the_inspector_and_cancelled_there(ui: TunerPage) -> None:
    from playwright.sync_api import expect

    # when a person types a dps command, its prompt on a line of its own (Shift+Enter), and sends it with Enter
    ui.tab("Playground")
    box = ui.field("message")
    box.click()
    box.press_sequentially("dps u in 10 minutes")
    box.press("Shift+Enter")
    box.press_sequentially("Drink water")
    expect(box).to_have_value("dps u in 10 minutes\nDrink water")
    box.press("Enter")
    expect(box).to_have_value("", timeout=TURN_MS)
    ui.wait_for_replies()

    # then both sides scheduled it: each pane says so, with the message's id
    for side in ("edited", "saved"):
        expect(ui.page.locator(f"#{side}-chat").get_by_test_id("user")).to_contain_text("Drink water")
        expect(ui.replies(side).first).to_contain_text("Scheduled a message to you: ")
    found = SESSION_ID.search(ui.replies("edited").first.inner_text())
    assert found, "the edited side's answer names no id"
    schedule_id = found.group()

    # and the inspector lists both sessions, each with one message scheduled (the last column)
    rows = ui.sessions()
    expect(rows).to_have_count(2)
    for row in rows.all():
        expect(row.get_by_role("gridcell").last).to_have_text("1")

    # when the operator shows the edited side's session (the older: the edited side runs first)
    ui.show(rows.last)

    # then its scheduled message is listed: its id, recipient, when and prompt
    status = ui.page.locator("#inspect-status")
    expect(status).to_contain_text("1 scheduled message(s) waiting")
    expect(ui.schedule_rows()).to_have_count(1)
    listed = ui.schedule_rows().first
    for shown in (schedule_id, "user", "UTC", "Drink water"):
        expect(listed).to_contain_text(shown)

    # when they pick it and cancel it
    listed.get_by_role("gridcell").first.click()
    expect(ui.page.get_by_label("Scheduled message id (click a row)")).to_have_value(schedule_id)
    ui.page.get_by_role("button", name="Cancel scheduled message").click()

    # then the page says so and the message is gone from the list, also when the session is read again
    expect(status).to_contain_text(f"✓ cancelled scheduled message {schedule_id} to user")
    expect(ui.schedule_rows()).to_have_count(0)
    ui.page.get_by_role("button", name="Show", exact=True).click()
    expect(status).not_to_contain_text("cancelled")
    expect(status).not_to_contain_text("scheduled message(s) waiting")
    expect(ui.schedule_rows()).to_have_count(0)

    # and the saved side's session still has its own
    rows = ui.sessions()
    expect(rows.last.get_by_role("gridcell").last).to_have_text("0")
    expect(rows.first.get_by_role("gridcell").last).to_have_text("1")
    ui.show(rows.first)
    expect(ui.schedule_rows()).to_have_count(1)
    expect(ui.schedule_rows().first).to_contain_text("Drink water")
    expect(ui.schedule_rows().first).not_to_contain_text(schedule_id)
