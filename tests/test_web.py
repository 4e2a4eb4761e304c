"""The review page (`hybridjudge review serve`) through Starlette's test client: the guard,
the queue, the item page, resolving through the review desk, blind audits and leases."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from pytest_hybridjudge.cli import main
from pytest_hybridjudge.review.leases import LeaseBook
from pytest_hybridjudge.review.resolutions import load_resolutions
from pytest_hybridjudge.web.security import CSP
from reviewpage import (
    HOSTILE,
    JUDGE_TEXT,
    Clock,
    csrf,
    page_client,
    review_item,
    sign_in,
    write_project,
)

ITEMS = [review_item("capital-france"), review_item("capital-spain", tier="senior")]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return write_project(tmp_path, ITEMS)


def resolutions(root: Path) -> list[dict[str, object]]:
    path = root / "review" / "resolutions.jsonl"
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


# --- the guard -----------------------------------------------------------------------------


def test_the_token_is_spent_once_for_a_strict_httponly_cookie_and_a_clean_redirect(
    root: Path,
) -> None:
    client, guard = page_client(root)
    assert client.get("/").status_code == 403
    first = client.get(f"/?token={guard.token}", follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"] == "/"
    cookie = first.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert client.get("/").status_code == 200
    client.cookies.clear()
    again = client.get(f"/?token={guard.token}", follow_redirects=False)
    assert again.status_code == 403 and "already used" in again.text


def test_a_foreign_host_is_refused_even_with_the_token_and_cookie(root: Path) -> None:
    client, guard = page_client(root)
    sign_in(client, guard)
    response = client.get("/", headers={"Host": "attacker.example"})
    assert response.status_code == 421
    fresh, guard2 = page_client(root)
    assert (
        fresh.get(f"/?token={guard2.token}", headers={"Host": "attacker.example:8765"}).status_code
        == 421
    )


def test_writes_need_the_csrf_token_and_refuse_cross_site_requests(root: Path) -> None:
    client, guard = page_client(root)
    sign_in(client, guard)
    assert client.post("/api/next", json={}).status_code == 403
    cross = {**csrf(guard), "Origin": "http://attacker.example"}
    assert client.post("/api/next", json={}, headers=cross).status_code == 403
    sites = {**csrf(guard), "Sec-Fetch-Site": "cross-site"}
    assert client.post("/api/next", json={}, headers=sites).status_code == 403
    same = {**csrf(guard), "Origin": "http://127.0.0.1:8765", "Sec-Fetch-Site": "same-origin"}
    assert client.post("/api/next", json={}, headers=same).json()["ok"]


def test_every_response_carries_the_csp_and_no_store_headers(root: Path) -> None:
    client, guard = page_client(root)
    for response in (client.get("/"), client.get("/static/app.js")):
        assert response.headers["content-security-policy"] == CSP
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["cache-control"] == "no-store"
    sign_in(client, guard)
    assert client.get("/").headers["content-security-policy"] == CSP


def test_hostile_run_data_is_escaped_everywhere(tmp_path: Path) -> None:
    hostile = review_item(HOSTILE, output=HOSTILE, reasons=[HOSTILE])
    root = write_project(tmp_path, [hostile])
    client, guard = page_client(root)
    sign_in(client, guard)
    for page in (client.get("/").text, client.get(f"/item/{hostile.item_id}").text):
        assert "<script>alert" not in page and "<img src=x" not in page
        assert "&lt;script&gt;alert" in page
    assert "<script" not in client.get(f"/item/{hostile.item_id}").text.split("</head>")[1]


def test_serve_refuses_a_remote_host_unless_allowed(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["review", "serve", "--root", str(root), "--host", "0.0.0.0"])
    assert code == 2
    assert "--allow-remote" in capsys.readouterr().err


# --- queue, item, resolve ------------------------------------------------------------------


def test_queue_lists_pending_items_with_load_per_tier_and_filters(root: Path) -> None:
    client, guard = page_client(root)
    sign_in(client, guard)
    page = client.get("/").text
    assert "capital-france" in page and "capital-spain" in page
    assert "$1.00" in page  # annotator: 3 minutes at $20/h
    senior = client.get("/?tier=senior").text
    assert "capital-spain" in senior and "/item/" + ITEMS[0].item_id not in senior


def test_item_page_shows_the_item_and_resolving_lands_in_the_resolutions_file(
    root: Path,
) -> None:
    clock = Clock()
    client, guard = page_client(root, clock)
    sign_in(client, guard)
    first = client.get("/review", follow_redirects=False).headers["location"]
    assert first == f"/item/{ITEMS[0].item_id}"
    page = client.get(first).text
    assert JUDGE_TEXT in page and "What is the capital for capital-france?" in page
    opened = clock.now.timestamp()
    clock.advance(1.5)
    done = client.post(
        "/api/resolve",
        json={
            "item_id": ITEMS[0].item_id,
            "verdict": "pass",
            "score": "5",
            "note": "ok",
            "opened": opened,
        },
        headers=csrf(guard),
    ).json()
    assert done["ok"] and done["next"] == f"/item/{ITEMS[1].item_id}"
    (line,) = resolutions(root)
    assert line["reviewer"] == "ana" and line["score"] == 5 and line["lead_time_s"] == 90.0
    assert not line.get("blind")  # written only when true
    # The CLI reads what the page wrote.
    assert [r.verdict for r in load_resolutions(root / "review" / "resolutions.jsonl")] == ["pass"]


def test_a_refused_decision_says_why_and_writes_nothing(root: Path) -> None:
    client, guard = page_client(root)
    sign_in(client, guard)
    bad = client.post(
        "/api/resolve",
        json={"item_id": ITEMS[0].item_id, "verdict": "pass", "score": "2", "opened": 0},
        headers=csrf(guard),
    )
    assert bad.status_code == 409 and "inconsistent" in bad.json()["error"]
    assert not (root / "review" / "resolutions.jsonl").exists()


def test_an_unwritable_resolutions_file_is_reported(root: Path) -> None:
    folder = root / "review"
    folder.mkdir()
    (folder / "resolutions.jsonl").mkdir()  # a folder where the file should be
    client, guard = page_client(root)
    sign_in(client, guard)
    response = client.post(
        "/api/resolve",
        json={"item_id": ITEMS[0].item_id, "verdict": "fail", "opened": 0},
        headers=csrf(guard),
    )
    assert response.status_code in (409, 500) and not response.json()["ok"]
    assert "resolutions.jsonl" in response.json()["error"]


# --- blind audits, leases -------------------------------------------------------------------


def test_a_blind_audit_hides_the_judges_until_submitted_and_records_blind(tmp_path: Path) -> None:
    audit = review_item("audited", audit=True)
    root = write_project(tmp_path, [audit])
    client, guard = page_client(root)
    sign_in(client, guard)
    before = client.get(f"/item/{audit.item_id}").text
    assert JUDGE_TEXT not in before and "0.83" not in before and "split" not in before
    client.post(
        "/api/resolve",
        json={"item_id": audit.item_id, "verdict": "fail", "opened": 0},
        headers=csrf(guard),
    )
    assert resolutions(root)[0]["blind"] is True
    assert JUDGE_TEXT in client.get(f"/item/{audit.item_id}").text


def test_a_tier_configured_blind_hides_the_judges(tmp_path: Path) -> None:
    item = review_item("expert-case", tier="senior")
    root = write_project(tmp_path, [item], "[tool.hybridjudge.review.tier.senior]\nblind = true")
    client, guard = page_client(root)
    sign_in(client, guard)
    assert JUDGE_TEXT not in client.get(f"/item/{item.item_id}").text


def test_next_hands_two_reviewers_different_items_until_the_lease_expires(root: Path) -> None:
    clock = Clock()
    ana, guard = page_client(root, clock)
    sign_in(ana, guard)
    bo = ana.__class__(ana.app, base_url=str(ana.base_url))
    bo.cookies.set("hybridjudge_session", guard.session)
    bo.post("/api/name", json={"name": "bo"}, headers=csrf(guard))
    first = ana.post("/api/next", json={}, headers=csrf(guard)).json()["next"]
    second = bo.post("/api/next", json={}, headers=csrf(guard)).json()["next"]
    assert first != second
    assert "being reviewed by ana until 10:10" in bo.get("/").text
    clock.advance(11)  # ana's lease expired: the item is free again
    book = LeaseBook.beside(root / "review" / "resolutions.jsonl")
    assert book.state(clock.now).holder(first.rsplit("/", 1)[1]) is None


def test_skip_moves_the_item_to_the_end_of_my_queue(root: Path) -> None:
    client, guard = page_client(root)
    sign_in(client, guard)
    skipped = client.post(
        "/api/skip", json={"item_id": ITEMS[0].item_id}, headers=csrf(guard)
    ).json()
    assert skipped["next"] == f"/item/{ITEMS[1].item_id}"
    rows = client.get("/").text
    assert rows.index(ITEMS[1].item_id) < rows.index(ITEMS[0].item_id)


# --- several reviewers, paging -------------------------------------------------------------


def test_two_reviews_per_item_hide_the_first_until_the_second_is_in(tmp_path: Path) -> None:
    item = review_item("twice")
    root = write_project(tmp_path, [item], "[tool.hybridjudge.review]\nreviews_per_item = 2")
    ana, guard = page_client(root)
    sign_in(ana, guard, "ana")
    body = {"item_id": item.item_id, "verdict": "fail", "note": "ANA-NOTE", "opened": 0}
    assert ana.post("/api/resolve", json=body, headers=csrf(guard)).json()["next"] == "/?done=1"
    ana.post("/api/name", json={"name": "bo"}, headers=csrf(guard))
    assert "/item/" + item.item_id in ana.get("/").text  # still open for a second reviewer
    page = ana.get(f"/item/{item.item_id}").text
    assert "ANA-NOTE" not in page and "1 earlier decision, shown once yours is in" in page
    body = {**body, "verdict": "pass", "note": "", "score": "4"}
    ana.post("/api/resolve", json=body, headers=csrf(guard))
    page = ana.get(f"/item/{item.item_id}").text
    assert "ANA-NOTE" in page and "/item/" + item.item_id in ana.get("/adjudicate").text


def test_amend_replaces_my_decision_as_in_the_cli(root: Path) -> None:
    client, guard = page_client(root)
    sign_in(client, guard)
    body = {"item_id": ITEMS[0].item_id, "verdict": "fail", "opened": 0}
    client.post("/api/resolve", json=body, headers=csrf(guard))
    again = client.post("/api/resolve", json=body, headers=csrf(guard)).json()
    assert "already resolved" in again["error"]
    amended = client.post(
        "/api/resolve", json={**body, "verdict": "pass", "amend": True}, headers=csrf(guard)
    )
    assert amended.json()["ok"]
    assert [(r["verdict"], r["amend"]) for r in resolutions(root)] == [
        ("fail", False),
        ("pass", True),
    ]


def test_ten_thousand_pending_items_are_paged(tmp_path: Path) -> None:
    items = [review_item(f"case-{n:05d}") for n in range(10_000)]
    root = write_project(tmp_path, items)
    client, guard = page_client(root)
    sign_in(client, guard)
    page = client.get("/?page=3").text
    assert page.count('<tr data-href="/item/') == 50
    assert "10000 items · page 3 of 200" in page and "case-00100" in page


def test_mine_shows_the_items_of_my_tier_and_the_one_i_hold(tmp_path: Path) -> None:
    items = [review_item("a-case"), review_item("s-case", tier="senior")]
    root = write_project(
        tmp_path, items, "[tool.hybridjudge.review]\nreviewers = { ana = 'senior' }"
    )
    client, guard = page_client(root)
    sign_in(client, guard, "ana")
    mine = client.get("/?mine=1").text
    assert "s-case" in mine and "a-case" not in mine


def test_pairwise_items_show_both_outputs_side_by_side(tmp_path: Path) -> None:
    item = review_item("pair", output="CANDIDATE-TEXT").model_copy(
        update={"baseline_output": "BASELINE-TEXT"}
    )
    root = write_project(tmp_path, [item])
    client, guard = page_client(root)
    sign_in(client, guard)
    page = client.get(f"/item/{item.item_id}").text
    pair = page.split('class="pair"', 1)[1]
    assert pair.index("BASELINE-TEXT") < pair.index("CANDIDATE-TEXT")


def test_serve_prints_one_link_and_the_cli_sees_the_page_decisions(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    script = Path(sys.executable).with_name("hybridjudge")
    server = subprocess.Popen(
        [script, "review", "serve", "--root", str(root), "--port", str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        lines = [server.stdout.readline() for _ in range(2)]
        (link,) = [line.split(": ", 1)[1].strip() for line in lines if "review page:" in line]
        assert link.startswith(f"http://127.0.0.1:{port}/review?token=")
        with httpx.Client(follow_redirects=True) as browser:
            for _ in range(200):  # the server is listening once it answers
                try:
                    first = browser.get(link)
                    break
                except httpx.ConnectError:
                    time.sleep(0.05)
            assert first.status_code == 200 and "Who is reviewing" in first.text
            token = first.text.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
            headers = {"X-CSRF-Token": token}
            browser.post(f"http://127.0.0.1:{port}/api/name", json={"name": "ana"}, headers=headers)
            for item in ITEMS:
                done = browser.post(
                    f"http://127.0.0.1:{port}/api/resolve",
                    json={"item_id": item.item_id, "verdict": "fail", "opened": 0},
                    headers=headers,
                )
                assert done.json()["ok"], done.text
    finally:
        server.terminate()
        server.wait(timeout=10)
    capsys.readouterr()
    assert main(["review", "--root", str(root)]) == 0
    assert "no pending review items" in capsys.readouterr().out
