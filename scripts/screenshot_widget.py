"""Make the README's picture of the chat widget: ob-serve's demo page with the widget open after one turn, in
Debian's chromium.

    .venv/bin/python scripts/screenshot_widget.py [out.png]    # default: docs/images/widget.png

It starts its own `ob-serve` (embedded backend, no store file, no model key: the offline model answers) and
drives the page with the same steps as tests/web (support/widget.py).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # tests/support: the page steps the browser tests use

from support.browser import WidgetPage, chromium, ob_serve, screenshot_path  # noqa: E402
from support.widget import ANSWER, QUESTION  # noqa: E402

SIZE = {"width": 1100, "height": 720}


def main(argv: list[str]) -> int:
    out = screenshot_path(argv, "screenshot_widget", "widget.png")
    if out is None:
        return 1
    with tempfile.TemporaryDirectory() as home, ob_serve(Path(home)) as served, chromium() as browser:
        ui = WidgetPage(browser.new_page(viewport=SIZE))
        ui.goto(f"{served.url}/demo")
        ui.open()
        ui.greeted()
        ui.chat(QUESTION, ANSWER)
        ui.page.mouse.move(0, 0)  # no hover highlight in the picture
        ui.composer.blur()  # no focus ring or caret either
        ui.page.screenshot(path=str(out))
        assert ui.errors == [], f"errors on the page: {ui.errors}"
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
