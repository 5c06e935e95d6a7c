"""`ob-tuner` in Debian's chromium: the installed console script serves the page, a headless browser
edits, tries and saves a profile the way a person would, and reads what the page shows.

Each test gets its own `ob-tuner` (embedded backend, no store file), so none sees another's saves or
sessions. Skipped only where Playwright or /usr/bin/chromium is missing; `.ci/run` installs chromium.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from support.browser import LOAD_MS, TURN_MS, VIEWPORT, TunerPage, chromium, tuner, unavailable

from openbrain.conversation.tools.registry import TOOLS
from openbrain.domain.profile import DEFAULT_CLIENT_ID, DEFAULT_PROFILE
from openbrain.storage.orm.agent_config import AgentConfig

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = pytest.mark.e2e

QUESTION = "what is (17 + 5) * 3"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    with chromium() as launched:
        yield launched


@pytest.fixture
def ui(browser: Browser, tmp_path: Path) -> Iterator[TunerPage]:
    """A fresh `ob-tuner` and a fresh browser context on it, opened at the first client's default profile."""
    with tuner(tmp_path) as url:
        context = browser.new_context(viewport=VIEWPORT)
        try:
            opened = TunerPage(context.new_page())
            opened.open(url)
            yield opened
            assert opened.errors == [], f"JavaScript errors on the page: {opened.errors}"
        finally:
            context.close()


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
