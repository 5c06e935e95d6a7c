"""Make the README's picture of `ob-tuner`: the Playground after one compare turn with the calculator taken
out of the edited profile, in Debian's chromium.

    .venv/bin/python scripts/screenshot_tuner.py [out.png]    # default: docs/images/tuner.png

It starts its own `ob-tuner` (embedded backend, no store file, no model key: the offline model answers)
and drives the page with the same steps as tests/tuner/test_browser.py.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # tests/support/browser.py: the page steps the browser test uses

from support.browser import VIEWPORT, TunerPage, chromium, screenshot_path, tuner  # noqa: E402

QUESTION = "what is (17 + 5) * 3"


def main(argv: list[str]) -> int:
    out = screenshot_path(argv, "screenshot_tuner", "tuner.png")
    if out is None:
        return 1
    with tempfile.TemporaryDirectory() as home, tuner(Path(home)) as url, chromium() as browser:
        ui = TunerPage(browser.new_page(viewport=VIEWPORT))
        ui.open(url)
        ui.untick("calculator")
        ui.send(QUESTION)
        ui.page.mouse.move(0, 0)  # no hover highlight in the picture
        # From the client picker to the send row: gradio 6.31's bundled Source Sans Pro SemiBold lacks some
        # capitals, so the page title's "B" would show in a fallback font.
        top, bottom = ui.page.locator("#client").bounding_box(), ui.page.locator("#send").bounding_box()
        assert top and bottom
        y = top["y"] - 16
        ui.page.screenshot(path=str(out), clip={"x": 0, "y": y, "width": VIEWPORT["width"],
                                                "height": bottom["y"] + bottom["height"] + 32 - y})
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
