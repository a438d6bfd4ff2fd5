"""The memory store, the SQLite store and a simple model agree after every step.

A ``RuleBasedStateMachine`` (the pattern of hypothesis's own database tests)
sends the same generated operations -- new executions, checkpoint updates of
every type and action (valid or not), timers firing as time moves, callbacks
completed from outside, executions finishing, the SQLite store reopened -- to
each implementation and checks after every step that the logs, statuses and
next timers agree (and that memory and SQLite histories are identical). An
update one implementation refuses, all refuse.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import attrs
from hypothesis import event as note_event
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from durable_gen import (
    ErrorObject,
    MemoryStore,
    Operation,
    OperationAction,
    OperationStatus,
    OperationType,
    OperationUpdate,
    StoreError,
)
from durable_gen._stores.sqlite import SqliteStore

T0 = 1_767_225_600_000
A = OperationAction
S = OperationStatus
T = OperationType
TERMINAL = {S.SUCCEEDED, S.FAILED, S.CANCELLED, S.TIMED_OUT, S.STOPPED}
VALID = {
    T.STEP: {A.START, A.SUCCEED, A.FAIL, A.RETRY},
    T.CONTEXT: {A.START, A.SUCCEED, A.FAIL},
    T.WAIT: {A.START, A.CANCEL},
    T.CALLBACK: {A.START},
}
SUB_TYPE = {T.STEP: "Step", T.CONTEXT: "RunInChildContext", T.WAIT: "Wait", T.CALLBACK: "Callback"}
STATUS_OF = {A.START: S.STARTED, A.SUCCEED: S.SUCCEEDED, A.FAIL: S.FAILED, A.RETRY: S.PENDING}
STATUS_OF[A.CANCEL] = S.CANCELLED


class Refused(Exception):
    """The model refuses an update (the stores raise StoreError)."""


@attrs.define
class ModelExecution:
    status: str = "RUNNING"
    ops: dict[str, Operation] = attrs.Factory(dict)


class Model:
    """The service's rules, written plainly and separately from ``_service``."""

    def __init__(self):
        self.executions: dict[str, ModelExecution] = {}

    def create(self, ex, payload, now):
        if ex in self.executions:  # Lambda's name rule: the same input is the same execution
            if self.executions[ex].ops[ex].input_payload != payload:
                raise Refused
            return
        self.executions[ex] = ModelExecution(
            ops={
                ex: Operation(
                    id=ex,
                    type=T.EXECUTION,
                    status=S.STARTED,
                    start_timestamp=now,
                    input_payload=payload,
                )
            }
        )

    def checkpoint(self, ex, updates, now):
        ops = dict(self.executions[ex].ops)
        for u in updates:
            if u.action not in VALID[u.type]:
                raise Refused
            cur = ops.get(u.id)
            if cur is not None and (
                cur.type is not u.type
                or cur.sub_type != u.sub_type
                or cur.name != u.name
                or cur.status in TERMINAL
            ):
                raise Refused
            if u.parent_id is not None:
                parent = ops.get(u.parent_id)
                if parent is None or parent.type is not T.CONTEXT:
                    raise Refused
            status = STATUS_OF[u.action]
            op = cur or Operation(
                id=u.id,
                type=u.type,
                status=status,
                start_timestamp=now,
                parent_id=u.parent_id,
                name=u.name,
                sub_type=u.sub_type,
            )
            changes = {"status": status}
            if status in TERMINAL:
                changes["end_timestamp"] = now
            if u.type is T.STEP and u.action is not A.START:
                changes["attempt"] = (op.attempt or 0) + 1
                changes["next_attempt_timestamp"] = None
                if u.action is A.SUCCEED:
                    changes.update(result=u.payload, error=None)
                elif u.action is A.FAIL:
                    changes["error"] = u.error
                else:
                    changes.update(
                        result=u.payload,
                        error=u.error,
                        next_attempt_timestamp=now + u.next_attempt_delay_seconds * 1000,
                    )
            elif u.type is T.WAIT and u.action is A.START:
                changes["scheduled_end_timestamp"] = now + u.wait_seconds * 1000
            elif u.type is T.CONTEXT and u.action is A.SUCCEED:
                changes["result"] = u.payload
            elif u.type is T.CONTEXT and u.action is A.FAIL:
                changes["error"] = u.error
            elif u.type is T.CALLBACK:
                changes["callback_id"] = "model"
            ops[u.id] = attrs.evolve(op, **changes)
        self.executions[ex].ops = ops

    def fire_timers(self, ex, now):
        ops = self.executions[ex].ops
        for op_id, op in list(ops.items()):
            if op.type is T.STEP and op.status is S.PENDING and op.next_attempt_timestamp <= now:
                ops[op_id] = attrs.evolve(op, status=S.READY)
            elif op.type is T.WAIT and op.status is S.STARTED and op.scheduled_end_timestamp <= now:
                ops[op_id] = attrs.evolve(op, status=S.SUCCEEDED, end_timestamp=now)

    def next_timer(self, ex):
        due = [
            op.next_attempt_timestamp if op.type is T.STEP else op.scheduled_end_timestamp
            for op in self.executions[ex].ops.values()
            if (op.type is T.STEP and op.status is S.PENDING)
            or (op.type is T.WAIT and op.status is S.STARTED)
        ]
        return min(due) if due else None

    def complete_callback(self, ex, op_id, action, now, payload, error):
        ops = self.executions[ex].ops
        op = ops[op_id]
        if op.status is not S.STARTED:
            raise Refused
        if action == "heartbeat":
            ops[op_id] = attrs.evolve(op, last_heartbeat=now)
        elif action == "succeed":
            ops[op_id] = attrs.evolve(
                op, status=S.SUCCEEDED, end_timestamp=now, result=payload or ""
            )
        else:
            ops[op_id] = attrs.evolve(
                op, status=S.FAILED, end_timestamp=now, error=error or ErrorObject()
            )


def comparable(ops):
    """Callback ids are random per store: keep only whether one was given."""
    return {
        k: attrs.evolve(v, callback_id=None if v.callback_id is None else "set")
        for k, v in ops.items()
    }


def without_ids(history):
    out = []
    for event in history:
        e = dict(event)
        if "CallbackStartedDetails" in e:
            e["CallbackStartedDetails"] = {**e["CallbackStartedDetails"], "CallbackId": "set"}
        out.append(e)
    return out


names = st.sampled_from(["a", "b", "c"])
payloads = st.one_of(st.none(), st.sampled_from(['"x"', "1", '{"k":[1,2]}', ""]))
errors = st.one_of(
    st.none(), st.builds(ErrorObject, type=st.sampled_from(["E", "F"]), message=st.text(max_size=5))
)


class StoresAgree(RuleBasedStateMachine):
    @initialize()
    def open_stores(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.path = Path(self.tmp.name) / "agree.db"
        self.memory = MemoryStore()
        self.sqlite = SqliteStore(self.path, synchronous="NORMAL")
        self.model = Model()
        self.now = T0
        self.ids = 0
        self.finished: set[str] = set()

    def teardown(self):
        self.sqlite.close()
        self.tmp.cleanup()

    def all_refuse_or_none(self, calls):
        outcomes = []
        for call in calls:
            try:
                call()
            except (StoreError, Refused):
                outcomes.append("refused")
            else:
                outcomes.append("ok")
        assert len(set(outcomes)) == 1, outcomes
        return outcomes[0]

    @precondition(lambda self: len(self.model.executions) < 2)
    @rule(ex=st.sampled_from(["ex1", "ex2"]), payload=st.sampled_from(["1", '{"n":2}']))
    def create(self, ex, payload):
        outcome = self.all_refuse_or_none(
            [
                lambda: self.memory.create(ex, payload, self.now),
                lambda: self.sqlite.create(ex, payload, self.now),
                lambda: self.model.create(ex, payload, self.now),
            ]
        )
        if outcome == "ok":
            self.sqlite.acquire(ex, self.now)

    def _ops(self, ex):
        return self.model.executions[ex].ops

    @precondition(lambda self: bool(set(self.model.executions) - self.finished))
    @rule(
        data=st.data(),
        type_=st.sampled_from([T.STEP, T.CONTEXT, T.WAIT, T.CALLBACK]),
        action=st.sampled_from(list(A)),
        name=names,
        payload=payloads,
        error=errors,
        delay=st.integers(1, 30),
        n=st.integers(1, 2),
    )
    def checkpoint(self, data, type_, action, name, payload, error, delay, n):
        ex = data.draw(st.sampled_from(sorted(set(self.model.executions) - self.finished)))
        ops = [op for op in self._ops(ex).values() if op.type is not T.EXECUTION]
        updates = []
        for _ in range(n):
            wild = data.draw(st.integers(0, 4), label="wild") == 0  # 1 in 5 may be invalid
            live = [op for op in ops if wild or op.status not in TERMINAL]
            existing = data.draw(st.sampled_from([None, *live])) if live else None
            contexts = [op.id for op in ops if op.type is T.CONTEXT]
            if existing is not None:
                op_id, parent = existing.id, existing.parent_id
                type_, name = existing.type, existing.name
            else:
                self.ids += 1
                op_id = f"op{self.ids}"
                parent = data.draw(st.sampled_from([None, *contexts, *(["ghost"] if wild else [])]))
            if not wild:
                action = data.draw(st.sampled_from(sorted(VALID[type_])), label="action")
            updates.append(
                OperationUpdate(
                    id=op_id,
                    type=type_,
                    action=action,
                    parent_id=parent,
                    name=name,
                    sub_type=SUB_TYPE[type_],
                    payload=payload,
                    error=error,
                    next_attempt_delay_seconds=delay if action is A.RETRY else None,
                    wait_seconds=delay if type_ is T.WAIT else None,
                )
            )
        outcome = self.all_refuse_or_none(
            [
                lambda: self.memory.checkpoint(ex, updates, self.now, durable=True),
                lambda: self.sqlite.checkpoint(ex, updates, self.now, durable=True),
                lambda: self.model.checkpoint(ex, updates, self.now),
            ]
        )
        note_event(f"checkpoint {outcome}")

    @precondition(lambda self: bool(self.model.executions))
    @rule(seconds=st.integers(0, 40))
    def time_passes(self, seconds):
        self.now += seconds * 1000
        for ex in sorted(set(self.model.executions) - self.finished):
            self.memory.fire_timers(ex, self.now)
            self.sqlite.fire_timers(ex, self.now)
            self.model.fire_timers(ex, self.now)

    @precondition(
        lambda self: any(
            op.type is T.CALLBACK
            for ex in set(self.model.executions) - self.finished
            for op in self._ops(ex).values()
        )
    )
    @rule(
        data=st.data(),
        action=st.sampled_from(["succeed", "fail", "heartbeat"]),
        payload=payloads,
        error=errors,
    )
    def complete_callback(self, data, action, payload, error):
        ex, op_id = data.draw(
            st.sampled_from(
                sorted(
                    (ex, op.id)
                    for ex in set(self.model.executions) - self.finished
                    for op in self._ops(ex).values()
                    if op.type is T.CALLBACK
                )
            )
        )
        mem_id = self.memory.load(ex)[op_id].callback_id
        sql_id = self.sqlite.load(ex)[op_id].callback_id
        outcome = self.all_refuse_or_none(
            [
                lambda: self.memory.complete_callback(
                    mem_id, action, self.now, payload=payload, error=error
                ),
                lambda: self.sqlite.complete_callback(
                    sql_id, action, self.now, payload=payload, error=error
                ),
                lambda: self.model.complete_callback(ex, op_id, action, self.now, payload, error),
            ]
        )
        note_event(f"callback {action} {outcome}")

    @precondition(lambda self: bool(set(self.model.executions) - self.finished))
    @rule(data=st.data(), status=st.sampled_from(["SUCCEEDED", "FAILED"]))
    def finish(self, data, status):
        ex = data.draw(st.sampled_from(sorted(set(self.model.executions) - self.finished)))
        result = '"done"' if status == "SUCCEEDED" else None
        error = None if result else ErrorObject(type="E", message="m")
        self.memory.finish(ex, status, self.now, result=result, error=error)
        self.sqlite.finish(ex, status, self.now, result=result, error=error)
        self.model.executions[ex].status = status
        self.finished.add(ex)

    @rule()
    def reopen_sqlite(self):
        """A new process opens the file: everything checkpointed durably is there."""
        self.sqlite.close()
        self.sqlite = SqliteStore(self.path, synchronous="NORMAL")
        for ex in sorted(set(self.model.executions) - self.finished):
            self.sqlite.acquire(ex, self.now)

    @invariant()
    def logs_agree(self):
        if not hasattr(self, "model"):
            return
        for ex, mex in self.model.executions.items():
            mem = comparable(self.memory.load(ex))
            assert comparable(self.sqlite.load(ex)) == mem
            model = {
                k: attrs.evolve(v, last_heartbeat=None) for k, v in comparable(mex.ops).items()
            }
            assert {k: attrs.evolve(v, last_heartbeat=None) for k, v in mem.items()} == model
            assert self.memory.status(ex)[0] == self.sqlite.status(ex)[0] == mex.status
            if ex not in self.finished:
                assert (
                    self.memory.next_timer(ex)
                    == self.sqlite.next_timer(ex)
                    == self.model.next_timer(ex)
                )

    @invariant()
    def histories_agree(self):
        if not hasattr(self, "model"):
            return
        for ex in self.model.executions:
            assert without_ids(self.sqlite.history(ex)) == without_ids(self.memory.history(ex))


TestStoresAgree = StoresAgree.TestCase
