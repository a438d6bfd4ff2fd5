"""The HTML timeline without a browser: the axis, the layout worked out from a log, the markup.

The browser test (tests/browser/test_timeline.py) checks the page as drawn; these
check what it is drawn from, on logs made by real runs of the in-memory engine.
"""

from __future__ import annotations

import html.parser
import itertools
import math
from typing import Any

import attrs
import pytest

from durable_gen import (
    ChildContext,
    CreateCallback,
    ErrorObject,
    ExecutionInfo,
    Jitter,
    Map,
    OperationStatus,
    OperationType,
    RetryPolicy,
    Step,
    VirtualClock,
    Wait,
    WaitForCondition,
    WaitStrategy,
    current_attempt,
)
from durable_gen._core.log import Operation
from durable_gen._engine.sqlite import SqliteEngine
from durable_gen._html.axis import NICE_STEPS, choose_axis, fmt_offset
from durable_gen._html.model import build_timeline
from durable_gen._html.timeline import render, render_timeline

S, MIN, H, D = 1000, 60_000, 3_600_000, 86_400_000


# ------------------------------------------------------------------ the axis


@pytest.mark.parametrize(
    ("span", "step", "labels"),
    [
        (1, 1, ["0", "1 ms", "2 ms"]),
        (3 * S, 500, ["0", "500 ms", "1 s", "1.5 s", "2 s", "2.5 s", "3 s", "3.5 s"]),
        (
            2 * H,
            15 * MIN,
            [
                "0",
                "15 min",
                "30 min",
                "45 min",
                "1 h",
                "1 h 15 min",
                "1 h 30 min",
                "1 h 45 min",
                "2 h",
                "2 h 15 min",
            ],
        ),
        (40 * D, 7 * D, ["0", "7 d", "14 d", "21 d", "28 d", "35 d", "42 d"]),
    ],
    ids=["1ms", "3s", "2h", "40d"],
)
def test_the_tick_chooser_across_durations(span, step, labels):
    axis = choose_axis(span)
    assert axis.step == step
    assert [label for _, label in axis.ticks()] == labels
    assert axis.end > span


def _spans() -> list[int]:
    """Spans from 0 to a decade, on a log scale, with each nice step and its neighbours."""
    out = {0, 1, 2, 3}
    for k in range(200):
        out.add(round(10 ** (k * 12 / 200)))
    for step in NICE_STEPS:
        for n in (1, 7, 9, 10, 11):
            out.update((n * step - 1, n * step, n * step + 1))
    return sorted(out)


def test_the_axis_always_covers_the_span_with_room_in_few_ticks():
    for span in _spans():
        axis = choose_axis(span)
        where = f"span {span} ms: {axis}"
        assert axis.end % axis.step == 0, where
        assert axis.intervals <= 10, where
        assert axis.end - span >= max(1, span // 50), where  # room for a 2 px bar
        smaller = [s for s in NICE_STEPS if s < axis.step]
        if smaller:  # the finest spacing that fits: one finer needs too many ticks
            need = span + span // 50 + 1
            assert math.ceil(need / smaller[-1]) > 10, where
        labels = [label for _, label in axis.ticks()]
        assert len(set(labels)) == len(labels), where


def test_fewer_intervals_when_asked():
    assert choose_axis(3 * S, max_intervals=4).step == S
    assert choose_axis(3 * S, max_intervals=4).intervals == 4


@pytest.mark.parametrize(
    ("ms", "label"),
    [
        (0, "0"),
        (250, "250 ms"),
        (1250, "1.25 s"),
        (1500, "1.5 s"),
        (30 * S, "30 s"),
        (90 * S, "1 min 30 s"),
        (H + 15 * MIN, "1 h 15 min"),
        (D + 6 * H, "1 d 6 h"),
        (365 * D, "365 d"),
    ],
)
def test_tick_labels(ms, label):
    assert fmt_offset(ms) == label


def test_a_bad_span_is_a_clear_error():
    with pytest.raises(ValueError, match=r"^span_ms must be >= 0, got -5; pass end - start"):
        choose_axis(-5)
    with pytest.raises(TypeError, match=r"^span_ms must be an int \(milliseconds\), got float$"):
        choose_axis(1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"got bool$"):
        choose_axis(True)
    with pytest.raises(ValueError, match=r"^max_intervals must be an int >= 2, got 1$"):
        choose_axis(10, max_intervals=1)


# ------------------------------------------------------------------ the layout

CLOCK = VirtualClock()


def flaky() -> str:
    CLOCK.advance(0.4)
    if current_attempt() < 3:
        raise ConnectionError(f"down #{current_attempt()}")
    return "ok"


def inner(x: int) -> Any:
    return (yield Step(lambda: x, name="inner-step"))


def item(x: int, _index: int) -> Any:
    return (yield Step(lambda: x * 2, name="double"))


def flow(_: Any) -> Any:
    yield Step(
        flaky, name="flaky", retry=RetryPolicy(initial_delay=1, backoff_rate=2, jitter=Jitter.NONE)
    )
    yield ChildContext(inner, 1, name="kid")
    yield Map([1, 2], item, name="each")
    handle = yield CreateCallback("approval", timeout=7200, heartbeat_timeout=90)
    return (yield handle.result())


@pytest.fixture
def engine(tmp_path: Any) -> Any:
    with SqliteEngine(tmp_path / "t.db", clock=CLOCK) as e:
        yield e


def _run_flow(engine: SqliteEngine) -> tuple[SqliteEngine, str]:
    """``flow`` run until it waits for its approval (its timers fired as they came due)."""
    ex = engine.start(flow, {}, execution_id=f"flow-{CLOCK.now()}")
    while engine.resume(flow, ex, wait=False).status == "RUNNING":
        ops = engine.store.load(ex).values()
        if any(op.type is OperationType.CALLBACK for op in ops):
            return engine, ex  # waiting for the approval
        CLOCK.sleep_until(engine.store.next_timer(ex))
    raise AssertionError(f"flow ended: {engine.result(ex)}")


def _timeline(engine: SqliteEngine, ex: str, **kw: Any) -> Any:
    store = engine.store
    return build_timeline(store.info(ex), list(store.load(ex).values()), store.history(ex), **kw)


def _row(tl: Any, name: str) -> Any:
    return next(r for r in tl.rows if r.op.name == name)


def test_each_attempt_and_each_retry_delay_is_a_segment(engine):
    engine, ex = _run_flow(engine)
    segments = _row(_timeline(engine, ex), "flaky").segments
    assert [(s.kind, s.attempt) for s in segments] == [
        ("fail", 1),
        ("delay", None),
        ("fail", 2),
        ("delay", None),
        ("ok", 3),
    ]
    assert [s.end - s.start for s in segments] == [400, 1000, 400, 2000, 400]
    assert all(a.end == b.start for a, b in itertools.pairwise(segments))
    assert segments[0].tip == "attempt 1: failed in 400 ms — ConnectionError: down #1"
    assert segments[2].tip.endswith("ConnectionError: down #2")
    assert segments[3].tip.startswith("retry delay 2 s: attempt 3 due 2026-")


def test_contexts_nest_their_operations(engine):
    engine, ex = _run_flow(engine)
    tl = _timeline(engine, ex)
    shape = [(r.depth, r.label, r.descendants) for r in tl.rows]
    assert shape == [
        (0, "Step 'flaky'", 0),
        (0, "ChildContext 'kid'", 1),
        (1, "Step 'inner-step'", 0),
        (0, "Map 'each'", 4),
        (1, "MapIteration 'map-item-0'", 1),
        (2, "Step 'double'", 0),
        (1, "MapIteration 'map-item-1'", 1),
        (2, "Step 'double'", 0),
        (0, "CreateCallback 'approval'", 0),
    ]


def test_a_pending_wait_reaches_into_the_axis(engine):
    def wf(_: Any) -> Any:
        yield Step(str, 1, name="first")
        yield Wait(seconds=3600, name="nap")
        return 1

    ex = engine.start(wf)
    assert engine.resume(wf, ex, wait=False).status == "RUNNING"
    tl = _timeline(engine, ex)
    assert tl.now < tl.rows[1].op.scheduled_end_timestamp
    nap = _row(tl, "nap")
    (seg,) = nap.segments
    assert seg.kind == "wait"
    assert seg.todo  # the wake time is still to come
    assert seg.end == nap.op.scheduled_end_timestamp
    assert nap.info.startswith("wakes 2026-")
    assert [m.kind for m in nap.marks] == ["wake"]
    assert tl.t0 + tl.axis.end > seg.end  # the axis reaches past the wake time
    assert tl.axis.step == 10 * MIN  # an hour in 7 ticks


def test_a_pending_callback_names_its_id_and_timeouts(engine):
    engine, ex = _run_flow(engine)
    tl = _timeline(engine, ex)
    cb = _row(tl, "approval")
    assert [s.kind for s in cb.segments] == ["cb"]
    assert cb.info == (
        f"timeout 7200 s (2 h) · heartbeat 90 s (1 min 30 s) · callback id {cb.op.callback_id}"
    )
    assert cb.marks[0].at == cb.op.start_timestamp + 7200 * S
    assert cb.segments[0].todo
    assert cb.segments[0].end == tl.now  # running until now, not until its timeout
    assert tl.t0 + tl.axis.end < cb.marks[0].at  # a far timeout does not stretch the axis


def test_a_callback_completed_later_ends_where_it_was_completed(engine):
    engine, ex = _run_flow(engine)
    cb = next(op for op in engine.store.load(ex).values() if op.type is OperationType.CALLBACK)
    CLOCK.advance(45)
    done = CLOCK.now()
    engine.store.complete_callback(
        cb.callback_id, "fail", done, error=ErrorObject(type="No", message="refused")
    )
    engine.resume(flow, ex)
    row = _row(_timeline(engine, ex), "approval")
    (seg,) = row.segments
    assert seg.kind == "cb cbbad"
    assert not seg.todo
    assert seg.end == done
    assert seg.end - seg.start >= 45 * S
    assert "No: refused" in seg.tip


def test_a_wait_for_condition_draws_its_checks_and_the_delays_between(engine):
    strategy = WaitStrategy(
        should_continue=lambda s: s < 3, initial_delay=2, max_delay=10, jitter=Jitter.NONE
    )

    def wf(_: Any) -> Any:
        return (yield WaitForCondition(lambda s: s + 1, 0, strategy, name="ready"))

    ex = engine.run(wf).execution_id
    segments = _row(_timeline(engine, ex), "ready").segments
    assert [s.kind for s in segments] == ["ok", "delay", "ok", "delay", "ok"]
    assert segments[0].tip == "check 1: not done yet in 0 ms"
    assert segments[1].tip.startswith("next check 2 s: check 2 due ")
    assert segments[4].tip == "check 3: succeeded in 0 ms"


def test_without_events_the_operations_alone_are_drawn(engine):
    engine, ex = _run_flow(engine)
    store = engine.store
    ops = list(store.load(ex).values())
    tl = build_timeline(store.info(ex), ops, [])
    flaky_row = _row(tl, "flaky")
    assert [(s.kind, s.attempt) for s in flaky_row.segments] == [("ok", 3)]
    pending = attrs.evolve(
        flaky_row.op,
        status=OperationStatus.PENDING,
        end_timestamp=None,
        error=ErrorObject(type="E", message="m"),
        next_attempt_timestamp=flaky_row.op.start_timestamp + 10 * S,
    )
    tl = build_timeline(store.info(ex), [pending], [], now=pending.start_timestamp + 2 * S)
    kinds = [(s.kind, s.todo) for s in tl.rows[0].segments]
    assert kinds == [("fail", False), ("delay", True)]
    assert tl.rows[0].segments[0].tip == "attempt 3: failed — E: m"
    assert tl.t0 + tl.axis.end > pending.next_attempt_timestamp


def test_an_operation_whose_parent_is_missing_is_a_root(engine):
    engine, ex = _run_flow(engine)
    store = engine.store
    ops = [op for op in store.load(ex).values() if op.name != "kid"]
    tl = build_timeline(store.info(ex), ops, store.history(ex))
    assert _row(tl, "inner-step").depth == 0


# ------------------------------------------------------------------ the markup


class _Tags(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.seen: list[str] = []
        self.text: list[str] = []
        self.titles: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.seen.append(tag)
        self.titles += [v or "" for k, v in attrs if k == "title"]
        if tag not in ("meta", "br"):
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack, f"</{tag}> closes nothing"
        assert self.stack[-1] == tag, f"</{tag}> closes <{self.stack[-1]}>"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(page: str) -> _Tags:
    tags = _Tags()
    tags.feed(page)
    tags.close()
    assert tags.stack == []
    return tags


def test_the_page_is_well_formed_and_self_contained(engine):
    engine, ex = _run_flow(engine)
    store = engine.store
    page = render_timeline(store.info(ex), list(store.load(ex).values()), store.history(ex))
    tags = _parse(page)
    assert set(tags.seen) <= {
        "html", "head", "meta", "title", "style", "body", "h1", "p", "b", "ul", "li", "i",
        "div", "span", "details", "summary", "code",
    }  # fmt: skip
    for remote in ("http://", "https://", "<script", "<link", "<img", "@import", "url("):
        assert remote not in page
    assert page.count("<details") == 4  # kid, each and its two items
    ops = [op for op in store.load(ex).values() if op.type is not OperationType.EXECUTION]
    assert page.count('class="extent"') == len(ops) == 9


def test_a_cut_page_closes_what_it_opened_and_says_how_many_are_left_out(engine):
    engine, ex = _run_flow(engine)
    tl = _timeline(engine, ex, max_rows=5)  # cut inside Map 'each'
    assert len(tl.rows) == 5
    assert tl.hidden == 4
    page = render(tl)
    tags = _parse(page)
    assert "4 more operations not shown." in "".join(tags.text)


def _info(now: int) -> ExecutionInfo:
    return ExecutionInfo(
        id="ex",
        target=None,
        workdir=None,
        status="FAILED",
        input="{}",
        result=None,
        error=None,
        created_at=now,
        updated_at=now + 5,
        ended_at=now + 5,
        wake_at=None,
        lease_owner=None,
        lease_expires=None,
    )


HOSTILE = ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>', "a & b 'c'"]


def test_hostile_values_are_text():
    now = 1_767_225_600_000
    ops = [
        Operation(
            id=f"op{n}",
            type=OperationType.STEP,
            status=OperationStatus.FAILED,
            start_timestamp=now,
            end_timestamp=now + 5,
            name=text,
            sub_type=text,
            result=text,
            error=ErrorObject(type=text, message=text),
        )
        for n, text in enumerate(HOSTILE)
    ]
    info = attrs.evolve(
        _info(now),
        id=HOSTILE[0],
        target=HOSTILE[1],
        error=ErrorObject(type=HOSTILE[0], message=HOSTILE[1]),
    )
    page = render_timeline(info, ops, [])
    tags = _parse(page)
    assert "script" not in tags.seen
    assert "img" not in tags.seen
    text = "".join(tags.text)
    for value in HOSTILE:
        assert f"{value} '{value}'" in text or f'{value} "{value}"' in text
        assert any(value in t for t in tags.titles)


def test_undecodable_bytes_do_not_stop_the_page_from_being_written():
    # a history read with surrogateescape (``durable-gen history --json`` of bytes that
    # were not UTF-8) keeps lone surrogates; the page must still encode as UTF-8
    now = 1_767_225_600_000
    op = Operation(
        id="op1",
        type=OperationType.STEP,
        status=OperationStatus.FAILED,
        start_timestamp=now,
        end_timestamp=now + 5,
        name="bad",
        sub_type="Step\udce9",
        error=ErrorObject(type="ValueError", message="caf\udce9"),
    )
    page = render_timeline(_info(now), [op], [])
    text = page.encode("utf-8").decode("utf-8")
    assert "ValueError: caf\ufffd" in text
    assert "Step\ufffd &#x27;bad&#x27;" in text
