"""The web console in Chromium: the list, its filters and live rows; an execution that
waits on a callback, completed from the page; hostile values shown as text; the
inline confirmations; the token form. Screenshots go to docs/screenshots/."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest

from tests.test_console_api import BIG, HOSTILE, Console, serve_console

# playwright is in the test extra; without it (a bare install) these cannot run at
# all: skipped with pytest's reason. CI installs it and sets DURABLE_GEN_REQUIRE_BROWSER.
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
    expect(page.locator("#logs tr.l-WARNING")).to_contain_text("did not answer")
    page.click("#meter summary")
    for name, value in (
        ("per_million_operations", "8"),
        ("per_gb_persisted", "0.25"),
        ("per_gb_month_retained", "0.15"),
        ("retention_days", "30"),
    ):
        page.fill(f"#prices input[name={name}]", value)
    page.click("#prices button")
    expect(page.locator("#meter table.estimate")).to_be_visible()
    # the sandboxed timeline frame is painted in another process: a full-page shot of a
    # page taller than the window leaves it blank, so the window takes the page's height
    height = page.evaluate("document.documentElement.scrollHeight")
    page.set_viewport_size({"width": 1400, "height": height})
    page.wait_for_timeout(300)
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


def test_list_sorts_pages_back_and_filters_by_version(page, console):
    store = console.server.store
    target = console.server.functions["approval"]
    for i in range(5):
        store.create(f"job-{i}", "{}", 1_000_000 + i * 1000, target=target, code_version="v1")
        store.stop(f"job-{i}", 1_000_000 + i * 1000 + (5 - i) * 100)
    store.create("other", "{}", 2_000_000, target=target, code_version="v2")

    page.goto(console.url + "/console/?limit=2")
    rows = page.locator("#executions tbody tr")
    expect(rows.first).to_have_attribute("data-id", "other")
    page.select_option("select[name=order]", "oldest")  # submits the form
    expect(page).to_have_url(re.compile(r"order=oldest"))
    expect(rows.first).to_have_attribute("data-id", "job-0")
    expect(page.locator("#executions th", has_text="Started")).to_contain_text("↑")
    # the filter form drops the hidden limit: back to pages of 50 rows; page by 2 again
    page.goto(console.url + "/console/?order=oldest&limit=2")
    page.click("#next")
    expect(rows).to_have_count(2)
    expect(rows.first).to_have_attribute("data-id", "job-2")
    page.click("#previous")
    expect(rows.first).to_have_attribute("data-id", "job-0")
    expect(page.locator("#previous")).to_have_count(0)

    page.select_option("select[name=order]", "longest")
    expect(page.locator("#order-note")).to_contain_text("ended executions only")
    expect(rows.first).to_have_attribute("data-id", "job-0")  # 500 ms
    expect(page.locator('#executions tr[data-id="other"]')).to_have_count(0)  # running

    page.goto(console.url + "/console/")
    page.locator('#executions tr[data-id="other"] a.version').click()
    expect(page).to_have_url(re.compile(r"version=v2"))
    expect(rows).to_have_count(1)
    page.wait_for_timeout(1200)  # a poll re-renders the rows with their version links
    expect(page.locator("#executions a.version")).to_have_text("v2")
    assert page.errors == []


def test_logs_tail_live_and_the_payload_editor(page, console):
    console.start("chatty", {"tag": "browser"}, "chatty")
    console.wait_for(lambda: console.open_callback("chatty") is not None)
    page.goto(console.url + "/console/executions/chatty")
    logs = page.locator("#log-records tbody tr")
    expect(logs.first).to_contain_text("starting browser")
    expect(page.locator("#logs tr.l-WARNING td.message")).to_have_text(HOSTILE)
    expect(page.locator("#logs")).to_contain_text("undecodable: raw \ufffd\ufffd")
    caught = page.locator("#logs tr.l-ERROR", has_text="caught it")
    caught.locator("summary").click()
    expect(caught.locator(".stack")).to_contain_text("KeyError")
    expect(page.locator('#logs tr:has-text("in the step") td.where')).to_have_text("log-step #1")
    count = logs.count()

    area = page.locator(".callback textarea")
    area.fill('{"go":true,"n":[1,2]}')
    page.click(".callback button.format")
    expect(area).to_have_value('{\n  "go": true,\n  "n": [\n    1,\n    2\n  ]\n}')
    expect(page.locator(".callback .semantics")).to_contain_text("exactly as written")
    area.fill("{broken")
    expect(page.locator('[data-callback-action="succeed"]')).to_be_disabled()
    page.click(".callback button.format")  # nothing to format: the text stays
    expect(area).to_have_value("{broken")
    area.fill('  "sure"  ')
    page.click('[data-callback-action="succeed"]')
    expect(page.locator("#exec-status")).to_have_text("SUCCEEDED", timeout=10_000)
    expect(logs).to_have_count(count + 1)  # the tail brought the last record
    expect(logs.last).to_contain_text('after the callback:   "sure"  ')
    result = json.loads(console.server.store.info("chatty").result or "")
    assert result == '  "sure"  '  # the text as written

    page.select_option("#logs select[name=level]", "ERROR")
    expect(logs).to_have_count(2)
    _no_injection(page)
    assert page.errors == []


def test_pause_resume_and_fork_from_the_page(page, console):
    console.start("approval", {"order": 1}, "held")
    console.wait_for(lambda: console.open_callback("held") is not None)
    page.goto(console.url + "/console/executions/held")
    page.click('[data-action="pause"]')
    expect(page.locator("#exec-status")).to_have_text(re.compile("PAUS"), timeout=10_000)
    console.wait_for(lambda: console.status("held") == "PAUSED")
    expect(page.locator('[data-action="resume"]')).to_be_visible(timeout=10_000)
    expect(page.locator('[data-action="pause"]')).to_have_count(0)
    page.click('[data-action="resume"]')
    expect(page.locator("#exec-status")).to_have_text("RUNNING", timeout=10_000)
    expect(page.locator('[data-action="pause"]')).to_be_visible()

    console.start("many", {"n": 3}, "source")
    console.wait_for(lambda: console.status("source") == "SUCCEEDED")
    page.goto(console.url + "/console/executions/source")
    page.click("#fork summary")
    picker = page.locator("#fork-form select[name=at]")
    expect(picker.locator("option")).to_have_count(3)
    step1 = next(
        op.id for op in console.server.store.load("source").values() if op.name == "step 1"
    )
    picker.select_option(step1)
    page.fill("#fork-form input[name=name]", "bad name!")
    page.click("#fork-form button")
    expect(page.locator("#fork-message")).to_have_text(
        "a fork's name must be 1 to 64 letters, digits, '-' or '_', got 'bad name!'"
    )
    page.fill("#fork-form input[name=name]", "source-fork")
    page.click("#fork-form button")
    expect(page.locator("#fork-link")).to_have_text("Open source-fork")
    page.click("#fork-link")
    expect(page).to_have_url(re.compile(r"/console/executions/source-fork$"))
    expect(page.locator("#exec-status")).to_have_text("SUCCEEDED", timeout=10_000)
    assert console.server.store.info("source-fork").result == "3"
    assert page.errors == []


def test_an_invoke_links_to_the_invoked_execution(page, console):
    console.start("caller", {}, "caller")
    console.wait_for(lambda: console.status("caller") == "SUCCEEDED")
    page.goto(console.url + "/console/executions/caller")
    link = page.locator(".invoked-link")
    expect(link).to_be_visible()
    child = link.inner_text()
    link.click()
    expect(page.locator("#exec-name")).to_have_text(child)
    expect(page.locator(".opr", has_text="step 1")).to_contain_text("SUCCEEDED")
    assert page.errors == []


def test_the_meter_and_a_cost_estimate(page, console):
    from durable_gen._engine.meter import meter_execution

    console.start("order", {"key": "browser-meter"}, "metered")
    console.wait_for(lambda: console.open_callback("metered") is not None)
    page.goto(console.url + "/console/executions/metered")
    page.click("#meter summary")
    m = meter_execution(console.server.store, "metered")
    expect(page.locator("#meter-ops")).to_have_text(f"{m.operations:,}")
    expect(page.locator("#meter-bytes")).to_have_text(f"{m.bytes_persisted:,}")
    expect(page.locator('#meter tr[data-kind="Step"]')).to_be_visible()
    expect(page.locator("#meter-body")).to_contain_text("Give the three prices")

    page.fill("#prices input[name=per_million_operations]", "8")
    page.click("#prices button")
    expect(page.locator("#meter-body [role=alert]")).to_contain_text("missing price(s)")
    page.fill("#prices input[name=per_gb_persisted]", "0.25")
    page.fill("#prices input[name=per_gb_month_retained]", "0.1")
    page.fill("#prices input[name=executions_per_month]", "1000")
    page.click("#prices button")
    ops_cost = m.operations / 1_000_000 * 8 * 1000
    expect(page.locator('#meter tr[data-cost="operations"] td').nth(2)).to_have_text(
        f"{ops_cost:,.2f}"
    )
    page.reload()  # the prices stay in this browser
    expect(page.locator("#prices input[name=per_gb_persisted]")).to_have_value("0.25")
    assert page.errors == []


def test_hostile_values_in_logs_meter_and_fork_render_as_text(page, console):
    console.start("hostile", {"note": HOSTILE}, "hostile-panels")
    console.wait_for(lambda: console.status("hostile-panels") == "FAILED")
    page.goto(console.url + "/console/executions/hostile-panels")
    page.click("#meter summary")
    expect(page.locator("#meter ol.largest li").first).to_contain_text(HOSTILE)
    page.click("#fork summary")
    option = page.locator("#fork-form option", has_text="alert(1)")
    expect(option).to_have_count(1)
    assert option.inner_text().endswith(f"Step {HOSTILE} · SUCCEEDED")
    page.fill("#fork-form input[name=name]", HOSTILE)
    page.click("#fork-form button")
    expect(page.locator("#fork-message")).to_contain_text("<script>alert(1)</script>")
    _no_injection(page)

    console.start("chatty", {"tag": HOSTILE}, "hostile-logs")
    console.wait_for(lambda: console.open_callback("hostile-logs") is not None)
    page.goto(console.url + "/console/executions/hostile-logs")
    expect(page.locator("#log-records tbody tr").first).to_have_text(re.compile("alert"))
    expect(page.locator("#logs td.message pre").first).to_have_text(f"starting {HOSTILE}")
    page.wait_for_timeout(1500)  # a few polls of the tail
    _no_injection(page)
    assert page.errors == []
