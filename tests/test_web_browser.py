"""The review page in a real browser: Playwright driving Debian's chromium against a uvicorn
server on loopback. Skipped only where /usr/bin/chromium is absent (CI installs it)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_hybridjudge.web.security import COOKIE
from reviewpage import (
    ARGS,
    CHROMIUM,
    HOSTILE,
    JUDGE_TEXT,
    WAIT_MS,
    Served,
    review_item,
    write_project,
)

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs Debian's chromium at /usr/bin/chromium (apt install chromium)",
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    """Start the review page over a project escalating the given items; stopped afterwards."""
    started: list[Served] = []

    def start(items: list[Any], table: str = "") -> Served:
        started.append(Served(write_project(tmp_path, items, table)))
        return started[-1]

    yield start
    for served in started:
        served.stop()


def signed_in(browser: Any, served: Served, name: str) -> Any:
    """A browser context holding the session cookie, its reviewer named by typing."""
    context = browser.new_context()
    context.add_cookies([{"name": COOKIE, "value": served.guard.session, "url": served.url()}])
    page = context.new_page()
    page.goto(served.url("/name"))
    page.fill("#name", name)
    page.keyboard.press("Enter")
    page.wait_for_url("**/item/**", timeout=WAIT_MS)
    return page


ITEMS = [review_item("first-case"), review_item("second-case"), review_item("third-case")]


def test_three_items_resolved_with_the_keyboard_only(browser: Any, serve: Any) -> None:
    served = serve(ITEMS)
    page = browser.new_page()
    page.goto(served.url("/review") + f"?token={served.guard.token}")
    page.wait_for_url("**/name", timeout=WAIT_MS)
    page.keyboard.type("Ana")  # the name field has focus
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/item/{ITEMS[0].item_id}", timeout=WAIT_MS)
    assert "1 of 3" in page.text_content("#progress")

    page.keyboard.press("p")
    page.keyboard.press("5")
    page.keyboard.press("Control+Enter")
    page.wait_for_url(f"**/item/{ITEMS[1].item_id}", timeout=WAIT_MS)

    page.keyboard.press("f")
    page.keyboard.press("2")
    page.keyboard.press("n")  # into the note: single keys now type
    page.keyboard.type("partly off; perhaps fine for a pass")
    page.keyboard.press("Control+Enter")
    page.wait_for_url(f"**/item/{ITEMS[2].item_id}", timeout=WAIT_MS)

    page.keyboard.press("?")
    assert page.is_visible("#help")
    page.keyboard.press("?")
    page.keyboard.press("p")
    page.keyboard.press("Control+Enter")
    page.wait_for_url("**/?done=1", timeout=WAIT_MS)

    lines = served.resolutions()
    assert [(r["verdict"], r["score"]) for r in lines] == [("pass", 5), ("fail", 2), ("pass", None)]
    assert lines[1]["note"] == "partly off; perhaps fine for a pass"
    assert {r["reviewer"] for r in lines} == {"Ana"}
    assert all(r["lead_time_s"] is not None for r in lines)


def test_a_failed_write_shows_the_error_and_keeps_what_was_typed(browser: Any, serve: Any) -> None:
    served = serve(ITEMS[:1])
    page = signed_in(browser, served, "Bo")
    page.keyboard.press("p")
    page.keyboard.press("2")  # below the pass threshold: the server refuses
    page.keyboard.press("f")
    page.keyboard.press("p")
    page.fill("#note", "my careful note")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("#error:not([hidden])", timeout=WAIT_MS)
    assert "inconsistent" in page.text_content("#error")
    assert page.input_value("#note") == "my careful note"
    assert f"/item/{ITEMS[0].item_id}" in page.url


def test_hostile_output_runs_nothing_and_the_charts_render_under_the_csp(
    browser: Any, serve: Any
) -> None:
    hostile = review_item("hostile", output=HOSTILE, reasons=[HOSTILE])
    served = serve([hostile, *ITEMS])
    page = signed_in(browser, served, "Cy")
    dialogs: list[str] = []
    console: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on("console", lambda m: console.append(m.text))
    page.goto(served.url(f"/item/{hostile.item_id}"))
    assert HOSTILE in page.text_content("#output")
    page.goto(served.url("/charts"))
    page.wait_for_load_state("load")
    images = page.query_selector_all(".chart img")
    assert len(images) >= 5
    for image in images:
        assert image.evaluate("i => i.complete && i.naturalWidth > 0"), image.get_attribute("src")
    assert dialogs == []
    assert not [m for m in console if "Content Security Policy" in m], console


def test_two_reviewers_pressing_next_get_different_items(browser: Any, serve: Any) -> None:
    served = serve(ITEMS)
    ana = signed_in(browser, served, "Ana")
    bo = signed_in(browser, served, "Bo")
    assert ana.url != bo.url
    for page in (ana, bo):
        page.goto(served.url("/"))
    ana.click("#next")
    bo.click("#next")
    ana.wait_for_url("**/item/**", timeout=WAIT_MS)
    bo.wait_for_url("**/item/**", timeout=WAIT_MS)
    assert ana.url != bo.url


def test_a_blind_audit_page_shows_no_judge_text_before_submitting(browser: Any, serve: Any) -> None:
    audit = review_item("audited", audit=True)
    served = serve([audit])
    page = signed_in(browser, served, "Di")
    assert JUDGE_TEXT not in page.content() and "0.83" not in page.content()
    page.keyboard.press("f")
    page.keyboard.press("Control+Enter")
    page.wait_for_url("**/?done=1", timeout=WAIT_MS)
    page.goto(served.url(f"/item/{audit.item_id}"))
    assert JUDGE_TEXT in page.content()
    assert served.resolutions()[0]["blind"] is True


def test_no_cookie_or_a_foreign_host_is_refused(browser: Any, serve: Any) -> None:
    served = serve(ITEMS)
    page = browser.new_page()
    assert page.goto(served.url("/")).status == 403
    rebound = f"http://attacker.example:{served.port}/review?token={served.guard.token}"
    assert page.goto(rebound).status == 421
    assert not served.guard.spent


def test_the_example_projects_escalations_resolved_in_the_browser(
    browser: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The example project (its config, tiers and reviewers) with the run the README shows: a
    domain expert who never opens a terminal resolves its three escalations with the keyboard,
    and `hybridjudge review` then has nothing pending."""
    import shutil

    from helpers import write_run
    from pytest_hybridjudge.cli import main as hybridjudge
    from pytest_hybridjudge.review.manifest import ReviewItem

    examples = Path(__file__).parent.parent / "examples"
    root = tmp_path / "examples"
    shutil.copytree(examples, root, ignore=shutil.ignore_patterns(".hybridjudge", "resolutions*"))
    lines = (examples / "review" / "manifest.example.jsonl").read_text("utf-8").splitlines()
    items = [ReviewItem.model_validate_json(line) for line in lines]
    write_run(root, items[0].run_id, items)
    served = Served(root)
    try:
        page = browser.new_page()
        page.goto(served.url("/review") + f"?token={served.guard.token}")
        page.wait_for_url("**/name", timeout=WAIT_MS)
        page.keyboard.type("dr-lee")
        page.keyboard.press("Enter")
        page.wait_for_url("**/item/**", timeout=WAIT_MS)
        for n in range(len(items)):
            shown = page.url
            assert f"{n + 1} of {len(items)}" in page.text_content("#progress")
            page.keyboard.press("p" if "capital" in page.text_content("h1") else "f")
            page.keyboard.press("Control+Enter")
            page.wait_for_url(lambda url, shown=shown: url != shown, timeout=WAIT_MS)
        assert page.url.endswith("/?done=1")
        decided = served.resolutions()
    finally:
        served.stop()
    assert sorted(r["item_id"] for r in decided) == sorted(i.item_id for i in items)
    assert {r["reviewer"] for r in decided} == {"dr-lee"}
    capsys.readouterr()
    assert hybridjudge(["review", "--root", str(root), "--run", "all"]) == 0
    assert "no pending review items" in capsys.readouterr().out
