"""What the widget promises the site that embeds it, in Debian's chromium against a real `ob-serve`: it is
accessible (axe-core, keyboard only, reduced motion), the page's CSS cannot break it and it cannot change the
page, it works under a strict Content-Security-Policy, and it says when the visitor may send again after a rate
limit (issue 14's "Done when").

The sites are our own, on another loopback origin than ob-serve's, and load the widget from ob-serve's
`/widget.js` with the demo client's widget key, as a client's site does; the accessibility scan runs on ob-serve's
`/demo`. Every test fails on a page error, a console error or a CSP violation (support/browser.py). Skipped only
where Playwright or /usr/bin/chromium is missing; `.ci/run` installs chromium, and axe-core installs itself
from npm on first use.
"""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from support.browser import LOAD_MS, TURN_MS, Served, WidgetPage, ob_serve, widget_page
from support.cli import TIMEOUT
from support.widget import (
    ANSWER,
    COMPUTED_STYLE,
    GENEROUS,
    HOST,
    QUESTION,
    Site,
    axe_core,
    computed_style,
    page_html,
    put_limits,
)

from openbrain.web import embed_tag

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Locator

pytestmark = pytest.mark.e2e

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"

# What a careless or hostile site's stylesheet does to everything it reaches.
HOSTILE_CSS = """
* { all: unset !important; font-size: 40px !important; color: red !important; line-height: 3 !important }
button { display: none !important }
div { background: lime !important; position: static !important }
textarea, [role] { visibility: hidden !important }
openbrain-widget, #openbrain-widget { display: none !important; opacity: 0.1 !important }
:root { font-size: 50px !important }
"""
# How a site is meant to style the widget (docs/widget.md): custom properties on its host element.
THEME_CSS = "openbrain-widget, #openbrain-widget { --openbrain-accent: #6d28d9; --openbrain-font: Georgia, serif }"
SITE_CSS = "body { font: 16px/1.5 Georgia, serif; margin: 2rem } .note { border: 1px solid #888; padding: 1em }"
TRY_AGAIN = re.compile(r"try again in (\d+) s")
# What moves on the widget: its running animations, and every transition or animation its styles declare.
MOVING = """(selector) => {
  const root = document.querySelector(selector).shadowRoot, found = [];
  for (const animation of root.getAnimations()) found.push(`animation ${animation.animationName || animation.id}`);
  for (const el of [root.host, ...root.querySelectorAll("*")]) for (const pseudo of [null, "::before", "::after"]) {
    const style = getComputedStyle(el, pseudo), name = el.localName + (pseudo || "");
    if (style.transitionDuration.split(",").some((d) => parseFloat(d) > 0) && style.transitionProperty !== "none")
      found.push(`${name} transition ${style.transitionProperty} ${style.transitionDuration}`);
    if (style.animationName !== "none" && style.animationDuration.split(",").some((d) => parseFloat(d) > 0))
      found.push(`${name} animation ${style.animationName} ${style.animationDuration}`);
  }
  return found;
}"""


@contextmanager
def site_with_widget(home: Path) -> Iterator[tuple[Served, Site]]:
    """An `ob-serve` whose demo client allows a site of ours, and that site: `/plain` (an ordinary page with the
    widget), `/bare` (the same page without it), `/hostile` and `/hostile-bare` (with the hostile stylesheet),
    `/themed` (hostile, and theming the widget) and `/strict` (the widget under a strict Content-Security-Policy)."""
    site = Site(css=SITE_CSS)
    with ob_serve(home, "--origin", site.origin) as served:
        tag, css = embed_tag(f"{served.url}/widget.js", served.widget_key), '<link rel="stylesheet" href="/site.css">'
        hostile, theme = f"<style>{HOSTILE_CSS}</style>", f"<style>{THEME_CSS}</style>"
        policy = (f"default-src 'none'; script-src {served.url}; style-src 'self'; img-src 'self'; "
                  f"connect-src {served.url} {served.ws_origin}; base-uri 'none'; form-action 'none'")
        site.pages = {"/plain": (page_html(css + tag), {}), "/bare": (page_html(css), {}),
                      "/hostile": (page_html(css + hostile + tag), {}), "/hostile-bare": (page_html(css + hostile), {}),
                      "/themed": (page_html(css + hostile + theme + tag), {}),
                      "/strict": (page_html(css + tag), {"Content-Security-Policy": policy})}
        with site.serving():
            yield served, site


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, browser: Browser) -> Iterator[tuple[Served, Site]]:
    with site_with_widget(tmp_path_factory.mktemp("ob-serve")) as (served, our_site):
        put_limits(served, GENEROUS)
        yield served, our_site


def serious_violations(ui: WidgetPage) -> list[str]:
    """axe-core's serious and critical violations on the page as it is now (it scans open shadow roots)."""
    ui.page.evaluate(axe_core().read_text())  # not a <script> tag: the demo page's CSP allows none
    results = ui.page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [f"{v['impact']} {v['id']}: {v['help']} at {[node['target'] for node in v['nodes']]}"
            for v in results["violations"] if v["impact"] in ("serious", "critical")]


def test_axe_finds_nothing_serious_on_the_demo_page_with_the_widget_closed_and_open(
        site: tuple[Served, Site], browser: Browser) -> None:
    from playwright.sync_api import expect

    served, _ = site
    with widget_page(browser, f"{served.url}/demo") as ui:
        assert serious_violations(ui) == []
        expect(ui.launcher).to_have_attribute("aria-expanded", "false")
        ui.open()
        ui.greeted()
        ui.chat(QUESTION, ANSWER)
        assert serious_violations(ui) == []
        # what axe cannot judge: the names and the live region a screen reader relies on (docs/widget.md)
        expect(ui.dialog).to_have_accessible_name("Chat")
        expect(ui.page.get_by_role("log")).to_have_attribute("aria-live", "polite")
        expect(ui.launcher).to_have_attribute("aria-expanded", "true")


def test_the_sites_css_changes_neither_how_the_widget_looks_nor_how_it_works(
        site: tuple[Served, Site], browser: Browser) -> None:
    _, ours = site

    def rendering(path: str) -> dict[str, Any]:
        """The computed styles and boxes of the widget's parts on `path`, closed then open after one turn."""
        with widget_page(browser, ours.origin + path) as ui:
            parts: dict[str, Locator] = {"launcher": ui.launcher}
            shown = {"launcher": (computed_style(ui.launcher), ui.launcher.bounding_box())}
            ui.open()
            ui.greeted()
            ui.chat(QUESTION, ANSWER)
            parts = {"panel": ui.dialog, "message list": ui.page.get_by_role("log"), "composer": ui.composer,
                     "user message": ui.messages("user").last, "assistant message": ui.messages("assistant").last,
                     "send": ui.send_button,
                     "close": ui.dialog.get_by_role("button", name="Close chat")}
            shown.update({name: (computed_style(part), part.bounding_box()) for name, part in parts.items()})
            return shown

    plain, hostile = rendering("/plain"), rendering("/hostile")
    for name, (style, box) in plain.items():
        assert changes(style, hostile[name][0]) == {}, f"the site's CSS changed the widget's {name}"
        assert hostile[name][1] == box, f"the site's CSS moved the widget's {name}"


def test_the_site_themes_the_widget_through_its_custom_properties(site: tuple[Served, Site], browser: Browser) -> None:
    from playwright.sync_api import expect

    _, ours = site
    with widget_page(browser, ours.origin + "/plain") as ui:
        ui.open()
        ui.greeted()
        default_font = ui.messages("assistant").first.evaluate("(el) => getComputedStyle(el).fontFamily")
    with widget_page(browser, ours.origin + "/themed") as ui:
        expect(ui.launcher).to_have_css("background-color", "rgb(109, 40, 217)")
        ui.open()
        ui.greeted()
        expect(ui.send_button).to_have_css("background-color", "rgb(109, 40, 217)")
        expect(ui.messages("assistant").first).to_have_css("font-family", "Georgia, serif")
    assert default_font != "Georgia, serif"


def changes(before: dict[str, str], after: dict[str, str]) -> dict[str, tuple[str | None, str | None]]:
    """The computed style properties that differ: (before, after) by name."""
    return {name: (before.get(name), after.get(name)) for name in before.keys() | after.keys()
            if before.get(name) != after.get(name)}


def page_changes(before: list[dict[str, str]], after: list[dict[str, str]]) -> list[str]:
    """What differs between two `light_dom_styles`, element by element."""
    if [element["tag"] for element in before] != [element["tag"] for element in after]:
        return [f"elements {[e['tag'] for e in before]} became {[e['tag'] for e in after]}"]
    pairs = enumerate(zip(before, after, strict=True))
    return [f"<{old['tag']}> #{index} {changes(old, new)}" for index, (old, new) in pairs if old != new]


def light_dom_styles(ui: WidgetPage) -> list[dict[str, str]]:
    """The computed style of every element of the page itself (not the widget's host or script)."""
    return list(ui.page.evaluate(f"""() => Promise.all(Array.from(document.querySelectorAll("*"))
        .filter((el) => !el.matches({json.dumps(HOST)}) && el.localName !== "script")
        .map(async (el) => ({{tag: el.localName, ...await ({COMPUTED_STYLE})(el)}})))"""))


@pytest.mark.parametrize("page", ["/plain", "/hostile"])
def test_the_widget_changes_nothing_on_the_page_that_embeds_it(
        site: tuple[Served, Site], browser: Browser, page: str) -> None:
    _, ours = site
    with widget_page(browser) as bare:  # the same page without the widget
        bare.page.goto(f"{ours.origin}{page}-bare".replace("plain-", ""))
        expected = light_dom_styles(bare)
    with widget_page(browser, ours.origin + page) as ui:
        assert page_changes(expected, light_dom_styles(ui)) == [], "the widget changed the page (closed)"
        ui.open()
        ui.greeted()
        ui.chat(QUESTION, ANSWER)
        assert page_changes(expected, light_dom_styles(ui)) == [], "the widget changed the page (open)"


def test_the_widget_opens_chats_and_streams_under_a_strict_content_security_policy(
        site: tuple[Served, Site], browser: Browser) -> None:
    served, ours = site
    frames: list[str] = []
    with widget_page(browser, ours.origin + "/strict") as ui:
        ui.page.on("websocket", lambda ws: ws.url.startswith(served.ws_origin)
                   and ws.on("framereceived", lambda payload: frames.append(str(payload))))
        ui.open()
        ui.greeted()
        ui.chat(QUESTION, ANSWER)
    tokens = [frame for frame in frames if '"token"' in frame]
    assert len(tokens) > 1, f"the reply did not stream over ob-serve's WebSocket: {frames}"


def test_a_visitor_uses_the_widget_with_the_keyboard_alone(site: tuple[Served, Site], browser: Browser) -> None:
    from playwright.sync_api import expect

    _, ours = site
    with widget_page(browser, ours.origin + "/plain") as ui:
        keyboard = ui.page.keyboard
        for _ in range(20):  # past the page's own links, button and fields
            keyboard.press("Tab")
            if ui.launcher.evaluate("(el) => el.getRootNode().activeElement === el"):
                break
        expect(ui.launcher).to_be_focused()
        keyboard.press("Enter")
        expect(ui.dialog).to_be_visible(timeout=LOAD_MS)
        expect(ui.composer).to_be_focused()
        expect(ui.send_button).to_be_enabled(timeout=TURN_MS)  # the icebreaker is in
        keyboard.type(QUESTION)
        keyboard.press("Enter")
        expect(ui.messages("assistant").last).to_have_text(ANSWER, timeout=TURN_MS)
        expect(ui.composer).to_have_value("")
        keyboard.press("Escape")
        expect(ui.dialog).to_be_hidden()
        expect(ui.launcher).to_be_focused()


def test_with_reduced_motion_nothing_on_the_widget_moves(site: tuple[Served, Site], browser: Browser) -> None:
    from playwright.sync_api import expect

    _, ours = site
    with widget_page(browser, ours.origin + "/plain") as ui:  # the probe sees the widget's motion by default
        ui.launcher.click()
        assert ui.page.evaluate(MOVING, HOST) != []
    with widget_page(browser, ours.origin + "/plain", reduced_motion="reduce") as ui:
        assert ui.page.evaluate(MOVING, HOST) == []
        ui.launcher.click()  # mid-opening, and while the icebreaker streams (a typing indicator)
        assert ui.page.evaluate(MOVING, HOST) == []
        expect(ui.send_button).to_be_enabled(timeout=TURN_MS)
        ui.composer.fill(QUESTION)
        ui.composer.press("Enter")  # and while the reply streams
        assert ui.page.evaluate(MOVING, HOST) == []
        expect(ui.messages("assistant").last).to_have_text(ANSWER, timeout=TURN_MS)
        assert ui.page.evaluate(MOVING, HOST) == []


def test_over_a_rate_limit_the_widget_says_when_to_try_again(tmp_path: Path, browser: Browser) -> None:
    from playwright.sync_api import expect

    with site_with_widget(tmp_path) as (served, ours):
        put_limits(served, {"user_per_minute": 1})  # one turn per minute for this visitor (127.0.0.1)
        refusals: list[int] = []
        with widget_page(browser, ours.origin + "/plain") as ui:
            ui.page.on("websocket", lambda ws: ws.on(
                "framereceived", lambda payload: refusals.extend(retry_after(payload))))
            ui.open()
            ui.greeted()  # the icebreaker is the minute's turn
            limited = ui.status.filter(has_text=TRY_AGAIN)
            for _ in range(2):  # a second send if the first one landed in a new minute
                expect(ui.send_button).to_be_enabled(timeout=TURN_MS)
                replies = ui.messages("assistant").count()
                ui.composer.fill(QUESTION)
                ui.composer.press("Enter")
                expect(limited.or_(ui.messages("assistant").nth(replies))).to_be_visible(timeout=TURN_MS)
                if limited.count():
                    break
            expect(ui.status).to_contain_text(TRY_AGAIN)
            shown = int(TRY_AGAIN.search(ui.status.inner_text()).group(1))  # type: ignore[union-attr]
            expect(ui.send_button).to_be_disabled()
            # it counts down (or, from 1 s, clears)
            expect(ui.status).not_to_contain_text(f"try again in {shown} s", timeout=3_000)
            later = TRY_AGAIN.search(ui.status.inner_text())
            assert later is None or int(later.group(1)) < shown
    assert refusals, "ob-serve sent no rate_limited error frame"
    assert 1 <= shown <= refusals[-1] <= 60 and refusals[-1] - shown <= 2, (shown, refusals)


def retry_after(payload: str | bytes) -> list[int]:
    """The `retry_after` of a WebSocket frame that refuses a turn as rate limited (docs/api.md, Streaming)."""
    frame = json.loads(payload)
    refused = isinstance(frame, dict) and frame.get("type") == "error" and frame.get("code") == "rate_limited"
    return [int(frame["retry_after"])] if refused else []


def test_the_readme_screenshot_script_makes_its_picture(tmp_path: Path, browser: Browser) -> None:
    out = tmp_path / "widget.png"
    result = subprocess.run([sys.executable, str(SCRIPTS / "screenshot_widget.py"), str(out)], capture_output=True,
                            text=True, timeout=TIMEOUT, env={**os.environ, "HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(out)
    png = out.read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", png[16:24])  # the IHDR chunk
    assert width >= 800 and height >= 600, (width, height)
