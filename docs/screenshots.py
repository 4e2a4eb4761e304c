"""Take the README's screenshots of the review page: a demo project (tests/reviewpage.py),
served on loopback, photographed in Debian's chromium. Run from the repository root:

    python docs/screenshots.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent / "tests"))

from playwright.sync_api import sync_playwright  # noqa: E402

from pytest_hybridjudge.web.security import COOKIE  # noqa: E402
from reviewpage import ARGS, CHROMIUM, Served, judged_project  # noqa: E402


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        root, items = judged_project(Path(folder))
        served = Served(root)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                context.add_cookies(
                    [{"name": COOKIE, "value": served.guard.session, "url": served.url()}]
                )
                context.add_cookies(
                    [{"name": "hybridjudge_reviewer", "value": "cy", "url": served.url()}]
                )
                page = context.new_page()
                page.goto(served.url("/"))
                page.screenshot(path=HERE / "review-queue.png", full_page=False)
                item = next(i for i in items if not i.audit)
                page.goto(served.url(f"/item/{item.item_id}"))
                page.click("details.diff summary")
                page.keyboard.press("p")
                page.keyboard.press("4")
                page.fill("#note", "Right answer, but it hedges; the reference is terser.")
                page.screenshot(path=HERE / "review-item.png", full_page=True)
                page.set_viewport_size({"width": 1400, "height": 900})
                page.goto(served.url("/charts"))
                page.screenshot(path=HERE / "review-charts.png", full_page=True)
                browser.close()
        finally:
            served.stop()


if __name__ == "__main__":
    main()
