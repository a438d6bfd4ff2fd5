"""The HTML timeline of ``durable-gen show ID --html`` in a real browser, read by its DOM.

A real workflow runs on a SqliteEngine with a virtual clock (its steps move the
clock, so attempts have a width): a step that fails twice then succeeds, a Wait,
a callback completed from outside (another connection to the database), a child
context and a Parallel of two branches. The page is written by the command
line, opened from its file and checked element by element; the screenshot
(docs/screenshots/timeline.png) is the README's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from durable_gen import (
    ChildContext,
    CreateCallback,
    ErrorObject,
    Jitter,
    OperationStatus,
    OperationType,
    Parallel,
    RetryPolicy,
    Step,
    StepError,
    VirtualClock,
    Wait,
    current_attempt,
)
from durable_gen._cli.main import main
from durable_gen._engine.sqlite import SqliteEngine
from durable_gen._html.timeline import render_timeline
from durable_gen._stores.sqlite import SqliteStore

CLOCK = VirtualClock()
RETRY = RetryPolicy(max_attempts=5, initial_delay=1, backoff_rate=2, jitter=Jitter.NONE)
HOSTILE_NAME = "<script>alert(1)</script>"
HOSTILE_ERROR = '"><img src=x onerror=alert(1)>'


def charge() -> str:
    CLOCK.advance(0.4)
    if current_attempt() < 3:
        raise ConnectionError(f"card network down #{current_attempt()}")
    return "charged"


def pack(item: str) -> str:
    CLOCK.advance(0.3)
    return item


def branch_a() -> Any:
    return (yield Step(pack, "a", name="pack-a"))


def branch_b() -> Any:
    yield Wait(seconds=2, name="cool-down")
    return (yield Step(pack, "b", name="pack-b"))


def kid(item: str) -> Any:
    return (yield Step(pack, item, name="kid-step"))


def order(_: Any) -> Any:
    yield Step(charge, name="charge", retry=RETRY)
    yield Wait(seconds=5, name="settle")
    handle = yield CreateCallback("approval", timeout=3600)
    approved = yield handle.result()
    packed = yield ChildContext(kid, "k", name="kid")
    shipped = yield Parallel([branch_a, branch_b], name="ship")
    return [approved, packed, shipped.get_results()]


def _complete_from_outside(db: Path, action: str, **kw: Any) -> Any:
    """What ``on_wait`` does: another connection completes the open callback."""

    def on_wait(execution_id: str, why: str) -> None:
        if why != "waiting for a callback":
            return
        with SqliteStore(db) as other:
            cb = next(
                op
                for op in other.load(execution_id).values()
                if op.type is OperationType.CALLBACK and op.status is OperationStatus.STARTED
            )
            CLOCK.advance(6)  # the approval took 6 s
            other.complete_callback(cb.callback_id, action, CLOCK.now(), **kw)

    return on_wait


@pytest.fixture(scope="module")
def order_page(tmp_path_factory: Any) -> tuple[Path, dict[str, Any]]:
    """The timeline of a finished ``order``, written by ``durable-gen show --html``."""
    tmp = tmp_path_factory.mktemp("timeline")
    db = tmp / "t.db"
    with SqliteEngine(db, clock=CLOCK) as engine:
        engine.on_wait = _complete_from_outside(db, "succeed", payload='"approved"')
        result = engine.run(order, {}, execution_id="order-1")
        assert result.status == "SUCCEEDED", result
        ops = {op.name: op for op in engine.store.load("order-1").values()}
    out = tmp / "order.html"
    assert main(["--db", str(db), "show", "order-1", "--html", str(out)]) == 0
    return out, ops


def row(op_id: str) -> str:
    """The selector of an operation's row (a summary when it has rows under it)."""
    return f'.tl .row[data-id="{op_id}"]'


def _box(page: Any, selector: str) -> dict[str, float]:
    box = page.locator(selector).bounding_box()
    assert box is not None, f"{selector} is not displayed"
    return dict(box)


def test_the_order_timeline_in_a_browser(page, order_page, screenshot_dir):
    path, ops = order_page
    page.goto(path.as_uri())

    # one row, and one extent bar, per operation (the EXECUTION is the page itself)
    assert page.locator(".tl .row[data-id]").count() == len(ops) - 1 == 11
    assert page.locator(".tl .row[data-id] .extent").count() == 11

    # the retried step: three attempts in order, the first two failed with their errors,
    # and the two retry delays (1 s, then 2 s) between them
    charge_id = ops["charge"].id
    charge = page.locator(row(charge_id))
    attempts = charge.locator(".bar[data-attempt]")
    assert attempts.count() == 3
    assert [attempts.nth(i).get_attribute("data-attempt") for i in range(3)] == ["1", "2", "3"]
    assert [attempts.nth(i).get_attribute("class") for i in range(3)] == [
        "bar fail",
        "bar fail",
        "bar ok",
    ]
    tips = [attempts.nth(i).get_attribute("title") or "" for i in range(3)]
    assert "ConnectionError: card network down #1" in tips[0]
    assert "ConnectionError: card network down #2" in tips[1]
    assert tips[2].startswith("attempt 3: succeeded in 400 ms")
    delays = charge.locator(".bar.delay")
    assert delays.count() == 2
    assert "retry delay 1 s" in (delays.nth(0).get_attribute("title") or "")
    assert "retry delay 2 s" in (delays.nth(1).get_attribute("title") or "")
    a1, d1, a2 = (_box(page, f"{row(charge_id)} .bar >> nth={i}") for i in range(3))
    assert a1["x"] < d1["x"] < a2["x"]  # attempt, delay, attempt, left to right
    assert d1["width"] > a1["width"]  # 1 s of delay is wider than a 400 ms attempt

    # the wait and the callback: distinct marks, with the wake time and the callback id
    settle = page.locator(row(ops["settle"].id))
    assert settle.locator(".bar.wait").count() == 1
    assert settle.locator(".mark.wake").count() == 1
    assert "woke 2026-01-01 00:00:" in settle.locator(".info").inner_text()
    approval = ops["approval"]
    cb = page.locator(row(approval.id))
    assert cb.get_attribute("data-type") == "CALLBACK"
    assert cb.locator(".bar.cb").count() == 1
    assert cb.locator(".bar.wait, .bar.ok").count() == 0
    assert cb.locator("code.cbid").inner_text() == approval.callback_id
    assert "timeout 3600 s" in cb.locator(".info").inner_text()
    wait_bg = page.eval_on_selector(
        f"{row(ops['settle'].id)} .bar.wait", "e => getComputedStyle(e).backgroundImage"
    )
    cb_bg = page.eval_on_selector(
        f"{row(approval.id)} .bar.cb", "e => getComputedStyle(e).backgroundImage"
    )
    assert "gradient" in wait_bg
    assert "gradient" in cb_bg
    assert wait_bg != cb_bg

    # nesting: the child's step one level down, the branches' operations two, inside
    # their parents' (collapsible) groups
    depth = {
        name: page.locator(row(op.id)).get_attribute("data-depth")
        for name, op in ops.items()
        if name
    }
    assert depth == {
        "charge": "0", "settle": "0", "approval": "0", "kid": "0", "ship": "0",
        "kid-step": "1", "parallel-branch-0": "1", "parallel-branch-1": "1",
        "pack-a": "2", "cool-down": "2", "pack-b": "2",
    }  # fmt: skip
    ship = ops["ship"].id
    assert page.locator(f'details[data-id="{ship}"] .row[data-id="{ops["pack-b"].id}"]').count()
    kid_indent = _box(page, f"{row(ops['kid-step'].id)} .name")["x"]
    top_indent = _box(page, f"{row(ops['kid'].id)} .name")["x"]
    assert kid_indent > top_indent

    # the axis: labelled ticks, and the last operation's bar ends inside it
    labels = page.locator(".axis .tick").all_inner_texts()
    assert labels[0] == "0"
    assert len(labels) >= 3
    assert any(t.endswith((" s", " min")) for t in labels[1:])
    axis = _box(page, ".axis .track")
    last_tick = _box(page, ".axis .tick.last")
    assert last_tick["x"] + last_tick["width"] <= axis["x"] + axis["width"] + 0.5
    last = _box(page, f"{row(ops['pack-b'].id)} .extent")
    assert axis["x"] <= last["x"]
    assert last["x"] + last["width"] <= axis["x"] + axis["width"]
    assert axis["x"] + axis["width"] - (last["x"] + last["width"]) < 0.15 * axis["width"]
    for name in ops:
        if name:
            bars = page.locator(f"{row(ops[name].id)} .bar")
            for i in range(bars.count()):
                b = bars.nth(i).bounding_box()
                assert b is not None
                assert b["x"] + b["width"] <= axis["x"] + axis["width"]

    # the legend names every kind of mark
    legend = page.locator(".legend").inner_text()
    for words in ("attempt failed", "retry delay", "wait", "wake time", "callback", "context"):
        assert words in legend

    assert page.errors == []
    page.locator("body").screenshot(path=str(screenshot_dir / "timeline.png"))

    # a group folds without a script: its operations' rows are hidden, its own stays
    page.click(f'summary[data-id="{ship}"]')
    assert page.locator(row(ops["pack-b"].id)).is_hidden()
    assert page.locator(row(ship)).is_visible()
    assert page.locator(row(ops["kid-step"].id)).is_visible()


def hostile(_: Any) -> Any:
    def broken() -> str:
        raise ValueError(HOSTILE_ERROR)

    try:
        yield Step(broken, name=HOSTILE_NAME, retry=RetryPolicy.none())
    except StepError as e:  # the workflow goes on; the page shows the failed step
        failed = e.error_message
    handle = yield CreateCallback(HOSTILE_ERROR, timeout=60)
    yield handle.result()
    return failed


def test_hostile_names_and_errors_render_as_text(page, tmp_path):
    db = tmp_path / "h.db"
    with SqliteEngine(db, clock=CLOCK) as engine:
        engine.on_wait = _complete_from_outside(
            db, "fail", error=ErrorObject(type=HOSTILE_NAME, message=HOSTILE_ERROR)
        )
        result = engine.run(hostile, {}, execution_id=HOSTILE_ERROR)
        assert result.status == "FAILED"
        store = engine.store
        html = render_timeline(
            store.info(HOSTILE_ERROR),
            list(store.load(HOSTILE_ERROR).values()),
            store.history(HOSTILE_ERROR),
        )
    out = tmp_path / "hostile.html"
    out.write_text(html, encoding="utf-8")
    page.goto(out.as_uri())
    assert page.locator("script").count() == 0
    assert page.locator("img").count() == 0
    names = page.locator(".tl .row .name").all_inner_texts()
    assert f"Step '{HOSTILE_NAME}'" in names
    assert f"CreateCallback '{HOSTILE_ERROR}'" in names
    assert HOSTILE_ERROR in page.locator("h1").inner_text()
    step = page.locator(".bar.fail").first.get_attribute("title") or ""
    assert step.endswith(f"ValueError: {HOSTILE_ERROR}")
    cb = page.locator(".bar.cbbad").first.get_attribute("title") or ""
    assert f"{HOSTILE_NAME}: {HOSTILE_ERROR}" in cb
    page.wait_for_timeout(200)  # an onerror handler would have run by now
    assert page.errors == []
    # the ``page`` fixture fails the test if any dialog opened


def test_a_thousand_operations_render_and_stay_light(page, tmp_path):
    def many(n: int) -> Any:
        for i in range(n):
            yield Step(str, i, name=f"s{i}")
        return n

    with SqliteEngine(tmp_path / "k.db", clock=VirtualClock()) as engine:
        engine.run(many, 1000, execution_id="k")
        store = engine.store
        html = render_timeline(store.info("k"), list(store.load("k").values()), store.history("k"))
    out = tmp_path / "k.html"
    out.write_text(html, encoding="utf-8")
    size_kb = len(html.encode()) / 1024
    assert size_kb < 640, f"{size_kb:.0f} KB for 1,000 operations"
    page.goto(out.as_uri())
    assert page.locator(".tl .row[data-id]").count() == 1000
    assert page.errors == []
