"""Paging through a large execution (issue 22, scale): the store's page readers, the
HTTP history and state routes, and `durable-gen history` / `show` over many pages.

One execution of 3,000 steps (plus a Parallel, whose context is updated long after it
was first recorded, and a Wait it is suspended at) is built once per module; pages
are small so that every listing crosses many of them.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from durable_gen import Parallel, Step, Wait
from durable_gen._cli.main import main
from durable_gen._core.errors import ValidationError
from durable_gen._engine.sqlite import SqliteEngine
from durable_gen._http.serve import make_server
from durable_gen._stores.sqlite import SqliteStore

STEPS = 3_000


def _noop(i):
    return i


def _branch(i):
    def body():
        return (yield Step(_noop, i, name=f"b{i}"))

    return body


def big(n):
    total = 0
    for i in range(n // 2):
        total += yield Step(_noop, i, name="s")
    yield Parallel([_branch(0), _branch(1)], name="fan")  # a context updated later
    for i in range(n // 2, n):
        total += yield Step(_noop, i, name="s")
    yield Wait(seconds=365 * 86400)
    return total


def small(_):
    return (yield Step(_noop, 1, name="one"))


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("paging") / "big.db"
    with SqliteEngine(store=SqliteStore(path, synchronous="NORMAL")) as engine:
        engine.start(big, STEPS, execution_id="big")
        assert engine.invoke_once(big, "big").status == "PENDING"
        engine.start(small, None, execution_id="small")
        assert engine.invoke_once(small, "small").status == "SUCCEEDED"
    return path


@pytest.fixture
def store(db) -> Iterator[SqliteStore]:
    with SqliteStore(db) as s:
        yield s


def _walk(read, limit: int) -> list[list[Any]]:
    pages, marker = [], None
    while True:
        page, marker = read(marker, limit)
        pages.append(page)
        if marker is None:
            return pages


# ---------------------------------------------------------------------- the store


@pytest.mark.parametrize("limit", [1, 7, 256, 1000])
def test_history_pages_hold_every_event_once_in_order(store, limit):
    whole = store.history("big")
    assert len(whole) > 2 * STEPS  # two events a step, and more
    pages = _walk(lambda m, n: store.history_page("big", m, n), limit)
    assert [e for page in pages for e in page] == whole
    assert all(len(page) == limit for page in pages[:-1])  # full pages, then the rest
    assert 1 <= len(pages[-1]) <= limit
    assert len(pages) == -(-len(whole) // limit)


@pytest.mark.parametrize("limit", [1, 13, 1000])
def test_history_pages_newest_first(store, limit):
    whole = store.history("big")
    pages = _walk(lambda m, n: store.history_page("big", m, n, reverse=True), limit)
    assert [e for page in pages for e in page] == whole[::-1]
    assert pages[0][0]["EventId"] == len(whole)


@pytest.mark.parametrize("limit", [1, 9, 1000])
def test_operation_pages_hold_every_operation_once_in_its_current_state(store, limit):
    whole = list(store.load("big").values())
    assert len(whole) == STEPS + 7  # EXECUTION, steps, fan + 2 branches + 2 steps, wait
    pages = _walk(lambda m, n: store.operations_page("big", m, n), limit)
    assert [op for page in pages for op in page] == whole
    fan = next(op for op in whole if op.name == "fan")
    assert fan.status.value == "SUCCEEDED"  # its newest version, not its first
    assert all(len(page) == limit for page in pages[:-1])


def test_a_page_is_read_by_key_not_by_reading_the_history(store):
    """The journal rows a page reads are about the page's, wherever it is."""
    statements: list[str] = []
    store._conn.set_trace_callback(statements.append)
    marker = None
    for _ in range(5):
        _, marker = store.history_page("big", marker, 10)
    store._conn.set_trace_callback(None)
    reads = [s for s in statements if "FROM journal" in s]
    assert reads
    assert all("LIMIT" in s for s in reads)


def _forge(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def test_markers_are_opaque_and_a_bad_one_is_a_clear_error(store):
    _, forward = store.history_page("big", None, 5)
    _, backward = store.history_page("big", None, 5, reverse=True)
    _, ops = store.operations_page("big", None, 5)
    _, small_marker = store.history_page("small", None, 1)
    assert forward
    assert backward
    assert ops
    assert small_marker
    assert not forward.isdigit()  # not an offset a caller could compute
    pk = int(base64.urlsafe_b64decode(forward + "==").decode().split(".")[1])
    bad = [
        "2",  # an offset
        "not a marker",
        "%%%",
        _forge("h.x.1.0.1"),
        _forge(f"h.{pk}.999999.0.5"),  # no such row
        _forge(f"h.{pk}.1.99.2"),  # no such event in the row
        _forge(f"h.{pk}.0.0.1"),
        backward,  # a marker of the other direction
        ops,  # of the operations
        small_marker,  # of another execution
        "x" * 500,
    ]
    for marker in bad:
        with pytest.raises(ValidationError, match=r"^Marker .* is not a marker of execution 'big'"):
            store.history_page("big", marker, 5)
    for marker in (forward, _forge(f"o.{pk}.999999"), "o"):
        with pytest.raises(ValidationError, match=r"is not a marker of execution 'big'"):
            store.operations_page("big", marker, 5)


def test_a_page_size_out_of_range_is_refused(store):
    for limit in (0, 1001, -1, True, "5"):
        with pytest.raises(ValidationError, match=r"^a page holds 1 to 1000 items, got "):
            store.history_page("big", None, limit)
        with pytest.raises(ValidationError, match=r"^a page holds 1 to 1000 items, got "):
            store.operations_page("big", None, limit)


def test_forward_markers_stay_valid_while_the_execution_grows(tmp_path):
    def grows(_):
        for i in range(30):
            yield Step(_noop, i, name="s")
        yield Wait(seconds=1)
        for i in range(30):
            yield Step(_noop, i, name="t")

    from durable_gen._engine.clock import VirtualClock

    with SqliteEngine(tmp_path / "g.db", clock=VirtualClock()) as engine:
        engine.start(grows, None, execution_id="g")
        assert engine.invoke_once(grows, "g").status == "PENDING"
        first, marker = engine.store.history_page("g", None, 20)
        ops, op_marker = engine.store.operations_page("g", None, 20)
        engine.clock.sleep_until(engine.clock.now() + 2000)
        assert engine.resume(grows, "g").status == "SUCCEEDED"
        rest = [e for page in _continue(engine.store.history_page, "g", marker) for e in page]
        more = [o for page in _continue(engine.store.operations_page, "g", op_marker) for o in page]
        assert first + rest == engine.store.history("g")
        assert [o.id for o in ops + more] == list(engine.store.load("g"))


def _continue(read, execution_id, marker):
    while marker is not None:
        page, marker = read(execution_id, marker, 20)
        yield page


# ---------------------------------------------------------------------- HTTP


@pytest.fixture(scope="module")
def server(db) -> Iterator[str]:
    srv = make_server("127.0.0.1", 0, db=str(db), functions={})
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/2025-12-01/durable-executions/big"
    srv.shutdown()
    srv.server_close()


def _get(url: str, **query: Any) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url + "?" + urllib.parse.urlencode(query)) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_http_history_pages_through_every_event(server, store):
    whole = store.history("big")
    seen: list[dict[str, Any]] = []
    query: dict[str, Any] = {"MaxItems": 250}
    while True:
        status, body = _get(server + "/history", **query)
        assert status == 200
        assert len(body["Events"]) <= 250
        seen += body["Events"]
        if "NextMarker" not in body:
            break
        query["Marker"] = body["NextMarker"]
    assert [e["EventId"] for e in seen] == list(range(1, len(whole) + 1))
    assert [e["EventType"] for e in seen] == [e["EventType"] for e in whole]
    assert seen[0]["EventTimestamp"] == whole[0]["EventTimestamp"] / 1000  # epoch seconds


def test_http_history_in_reverse_and_default_page_size(server, store):
    total = len(store.history("big"))
    status, body = _get(server + "/history", ReverseOrder="true", MaxItems=3)
    assert [e["EventId"] for e in body["Events"]] == [total, total - 1, total - 2]
    status, nxt = _get(
        server + "/history", ReverseOrder="true", MaxItems=3, Marker=body["NextMarker"]
    )
    assert [e["EventId"] for e in nxt["Events"]] == [total - 3, total - 4, total - 5]
    for size in (None, 0):  # absent or 0: the largest page, 1,000
        status, body = _get(server + "/history", **({} if size is None else {"MaxItems": size}))
        assert status == 200
        assert len(body["Events"]) == 1000
        assert body["NextMarker"]


def test_http_state_pages_through_every_operation(server, store):
    whole = [op.to_dict() for op in store.load("big").values()]
    ids: list[str] = []
    query: dict[str, Any] = {"MaxItems": 400, "CheckpointToken": "any"}
    while True:
        status, body = _get(server + "/state", **query)
        assert status == 200
        assert len(body["Operations"]) <= 400
        ids += [o["Id"] for o in body["Operations"]]
        if "NextMarker" not in body:
            break
        query["Marker"] = body["NextMarker"]
    assert ids == [o["Id"] for o in whole]


@pytest.mark.parametrize(
    ("route", "query", "message"),
    [
        ("/history", {"Marker": "12"}, r"^Marker '12' is not a marker of execution 'big'"),
        ("/history", {"Marker": _forge("h.1.1.0")}, r"is not a marker of execution 'big'"),
        ("/state", {"Marker": "junk", "CheckpointToken": "t"}, r"is not a marker of execution"),
        ("/history", {"MaxItems": 1001}, r"^MaxItems must be an integer from 0 to 1000, got"),
        ("/state", {"MaxItems": -1, "CheckpointToken": "t"}, r"^MaxItems must be an integer"),
    ],
)
def test_http_bad_marker_or_page_size_is_a_400(server, route, query, message):
    status, body = _get(server + route, **query)
    assert status == 400
    assert body["__type"] == "InvalidParameterValueException"
    assert re.search(message, body["message"]), body["message"]


# ---------------------------------------------------------------------- the CLI


def test_cli_history_over_many_pages_is_the_whole_history(db, store, capsys):
    whole = store.history("big")
    assert len(whole) > 3 * 1000  # more than three of the pages the command reads
    assert main(["history", "big", "--json", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert out == json.dumps({"Events": whole}, indent=2) + "\n"
    assert main(["history", "big", "--db", str(db)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(whole)
    assert [int(line.split()[0]) for line in lines] == list(range(1, len(whole) + 1))


def test_cli_show_limits_a_large_execution_and_all_prints_every_operation(db, capsys):
    assert main(["show", "big", "--db", str(db), "--limit", "10"]) == 0
    out = capsys.readouterr().out.splitlines()
    n = STEPS + 6
    head = next(i for i, line in enumerate(out) if line.startswith("operations ("))
    assert out[head] == (
        f"operations ({n:,}: 1 STARTED, {n - 1:,} SUCCEEDED; the first 5 and the last 5 as "
        "recorded; --all prints every one, --limit N more or fewer)"
    )
    body = out[head + 1 :]
    assert [line.split()[0] for line in body] == [
        "#1", "#2", "#3", "#4", "#5", "…",
        f"#{n - 4}", f"#{n - 3}", f"#{n - 2}", f"#{n - 1}", f"#{n}",
    ]  # fmt: skip
    assert body[5] == f"  … {n - 10:,} more …"
    assert "Step 's'  SUCCEEDED" in body[0]
    assert "→ 0" in body[0]
    assert "Wait  STARTED" in body[-1]
    assert main(["show", "big", "--db", str(db), "--all"]) == 0
    tree = capsys.readouterr().out.splitlines()
    assert f"operations ({n})" in tree
    assert len(tree) - tree.index(f"operations ({n})") - 1 == n  # one line each
    # at or under the limit: the tree, as before
    assert main(["show", "big", "--db", str(db), "--limit", str(n)]) == 0
    assert capsys.readouterr().out.splitlines() == tree
