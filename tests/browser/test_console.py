"""The web console in Chromium: the list, its filters and live rows; an execution that
waits on a callback, completed from the page; hostile values shown as text; the
inline confirmations; the token form. Screenshots go to docs/screenshots/."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest

from tests.test_console_api import BIG, HOSTILE, Console, serve_console

pytest.importorskip("playwright")

from playwright.sync_api import expect


@pytest.fixture
def console(tmp_path) -> Iterator[Console]:
    yield from serve_console(str(tmp_path / "browser.db"))


def _no_injection(page) -> None:
    """No element a hostile value could have added: one script (ours), no image."""
    assert page.evaluate("document.querySelectorAll('img').length") == 0
    scripts = page.evaluate("[...document.scripts].map(s => s.getAttribute('src'))")
    assert scripts == ["/console/static/console.js"]
    assert (
        page.evaluate(
            "document.querySelectorAll('[onerror], [onload], iframe:not([sandbox])').length"
        )
        == 0
    )


def test_list_filter_open_and_complete_a_callback(page, console):
    console.start("approval", {"order": 1}, "finished")
    console.wait_for(lambda: console.open_callback("finished") is not None)
    cb = console.open_callback("finished")
    console.server.store.complete_callback(cb, "succeed", console.server.clock.now(), payload="1")
    console.wait_for(lambda: console.status("finished") == "SUCCEEDED")
    console.start("approval", {"order": 2}, "needs-approval")
    console.wait_for(lambda: console.open_callback("needs-approval") is not None)

    page.goto(console.url + "/console/")
    rows = page.locator("#executions tbody tr")
    expect(rows).to_have_count(2)

    # a new execution shows up without a reload
    console.start("approval", {"order": 3}, "arrives-later")
    expect(page.locator('#executions tr[data-id="arrives-later"]')).to_be_visible(timeout=5000)

    page.select_option("select[name=status]", "SUCCEEDED")  # submits the filter
    expect(page).to_have_url(re.compile(r"status=SUCCEEDED"))
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-id", "finished")
    page.select_option("select[name=status]", "RUNNING")
    expect(page.locator('#executions tr[data-id="needs-approval"]')).to_be_visible()
    expect(page.locator('#executions tr[data-id="finished"]')).to_have_count(0)

    page.click('#executions a:text-is("needs-approval")')
    expect(page).to_have_url(re.compile(r"/console/executions/needs-approval$"))
    expect(page.locator("#exec-status")).to_have_text("RUNNING")
    expect(page.locator(".callback")).to_have_count(1)  # the script has rendered
    expect(page.locator("#summary .result")).to_have_count(0)
    assert "null" not in page.locator("#summary").inner_text()
    page.evaluate("window.__same_page = true")  # gone if the page reloads

    area = page.locator(".callback textarea")
    expect(area).to_be_visible()
    cb_id = console.open_callback("needs-approval")
    expect(page.locator(".callback .callback-id")).to_have_text(cb_id)
    expect(page.locator(".callback")).to_contain_text("times out at")

    area.fill("{not json")
    expect(page.locator(".callback [role=alert]")).to_contain_text("not valid JSON")
    expect(page.locator('[data-callback-action="succeed"]')).to_be_disabled()
    area.fill('{"approved": true, "by": "the browser test"}')
    expect(page.locator('[data-callback-action="succeed"]')).to_be_enabled()
    page.click('[data-callback-action="succeed"]')

    expect(page.locator("#exec-status")).to_have_text("SUCCEEDED", timeout=10_000)
    expect(page.locator("#summary .result pre")).to_contain_text("the browser test")
    expect(page.locator(".callback")).to_have_count(0)
    assert page.evaluate("window.__same_page") is True
    result = json.loads(console.server.store.info("needs-approval").result or "")
    assert json.loads(result["answer"]) == {"approved": True, "by": "the browser test"}
    assert page.errors == []


def test_hostile_values_render_as_text(page, console):
    console.start("hostile", {"note": HOSTILE}, HOSTILE)
    console.wait_for(lambda: console.status(HOSTILE) == "FAILED")

    page.goto(console.url + "/console/")
    link = page.locator("#executions td.name a")
    expect(link).to_have_text(HOSTILE)
    page.wait_for_timeout(1500)  # let a poll re-render the rows
    expect(link).to_have_text(HOSTILE)
    _no_injection(page)

    link.click()
    expect(page.locator("#exec-name")).to_have_text(HOSTILE)
    step = page.locator(".opr", has_text="alert(1)").first
    expect(step).to_be_visible()
    expect(step.locator(".opname")).to_have_text(HOSTILE)
    step.locator("summary", has_text="result").click()
    big = step.locator(".result pre")
    expect(big).to_contain_text(
        '"html": "<script>alert(1)</script>\\"><img src=x onerror=alert(1)>"'
    )
    chars = len(json.dumps({"html": HOSTILE, "big": BIG}, indent=2))
    expect(step.locator(".result .note")).to_have_text(f"showing 50,000 of {chars:,} characters")
    error = page.locator("#summary .error")
    expect(error).to_contain_text(HOSTILE)
    expect(error).to_contain_text("\ufffd")  # the undecodable bytes, replaced
    expect(page.locator("#summary .stack")).to_contain_text("_explode")
    _no_injection(page)
    assert page.errors == []


def test_screenshots_of_the_list_and_an_execution(page, console, screenshot_dir):
    for i in range(3):
        console.start("approval", {"order": i}, f"approval-{i}")
    console.start("many", {"n": 3}, "batch-import")
    console.start("hostile", {"note": "x"}, "nightly-report")
    console.start("order", {"key": "screenshot"}, "order-1042")
    console.wait_for(lambda: console.open_callback("order-1042") is not None, timeout=30)
    console.wait_for(lambda: console.status("nightly-report") == "FAILED")

    page.goto(console.url + "/console/")
    expect(page.locator("#executions tbody tr")).to_have_count(6)
    page.screenshot(path=str(screenshot_dir / "console-list.png"), full_page=True)

    page.goto(console.url + "/console/executions/order-1042")
    charge = page.locator(".opr", has_text="charge")
    expect(charge.locator("td.num").first).to_have_text("2")  # attempts: one retry
    expect(page.locator(".opr", has_text="cool-off")).to_contain_text("SUCCEEDED")
    expect(page.locator(".callback")).to_contain_text("ship-approval")
    expect(page.locator("#history tbody tr").first).to_be_visible()
    page.click("#timeline summary")
    expect(page.frame_locator("#timeline iframe").locator("body")).to_contain_text("order-1042")
    page.screenshot(path=str(screenshot_dir / "console-execution.png"), full_page=True)
    assert (screenshot_dir / "console-list.png").stat().st_size > 10_000
    assert (screenshot_dir / "console-execution.png").stat().st_size > 10_000
    assert page.errors == []


def test_stop_and_delete_ask_inline(page, console):
    console.start("approval", {"order": 1}, "doomed")
    console.wait_for(lambda: console.open_callback("doomed") is not None)
    page.goto(console.url + "/console/executions/doomed")
    page.click('[data-action="stop"]')
    expect(page.locator(".confirm")).to_contain_text("Stop this execution?")
    assert console.status("doomed") == "RUNNING"  # nothing happens before the confirmation
    page.click('.confirm button:text-is("Cancel")')
    expect(page.locator(".confirm")).to_have_count(0)
    page.click('[data-action="stop"]')
    page.click('[data-confirm="stop"]')
    expect(page.locator("#exec-status")).to_have_text("STOPPED", timeout=10_000)

    page.click('[data-action="redrive"]')
    expect(page.locator("#exec-status")).to_have_text("RUNNING", timeout=10_000)
    console.wait_for(lambda: console.open_callback("doomed") is not None)
    page.click('[data-action="stop"]')
    page.click('[data-confirm="stop"]')
    expect(page.locator("#exec-status")).to_have_text("STOPPED", timeout=10_000)

    page.click('[data-action="delete"]')
    page.click('[data-confirm="delete"]')
    expect(page).to_have_url(re.compile(r"/console/$"))
    assert not console.server.store.exists("doomed")
    assert page.errors == []


def test_a_server_with_a_token_asks_for_it(page, tmp_path):
    for guarded in serve_console(str(tmp_path / "token.db"), token="open-sesame"):
        guarded.start("approval", {"order": 1}, "secret-order")
        page.goto(guarded.url + "/console/")
        expect(page.locator("#login")).to_be_visible()
        page.fill("#login input[name=token]", "wrong")
        page.click("#login button")
        expect(page.locator("#login-error")).to_have_text(
            "that is not the token this server was started with"
        )
        page.fill("#login input[name=token]", "open-sesame")
        page.click("#login button")
        expect(page.locator('#executions tr[data-id="secret-order"]')).to_be_visible()
        token_seen = page.evaluate("document.cookie + JSON.stringify(sessionStorage)")
        assert "open-sesame" not in token_seen  # the cookie is HttpOnly and no token is kept
        assert page.errors == []
