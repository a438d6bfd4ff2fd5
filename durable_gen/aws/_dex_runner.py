"""Run AWS's durable-service emulator (``dex-local-runner``) with one race fixed.

``python -m durable_gen.aws._dex_runner start-server ...`` is
``dex-local-runner start-server ...`` (aws-durable-execution-sdk-python-testing
1.4.0) with a lost wake-up closed and, with ``--skip-time``, the invocation-retry
delay skipped too; :class:`durable_gen.aws.local.Emulator` starts the emulator
this way. Nothing else in the emulator changes: the histories it records and its
checks are AWS's.

``--skip-time`` skips waits and step retry delays but not the 5 s the emulator
waits before invoking again after a failed invocation (``RETRY_BACKOFF_SECONDS``,
real time): it is set to 0 there, so a program whose invocation fails (an
``InvocationError``) costs no real time either.

The race: a Wait's wake-up timer is armed when the Wait's START is checkpointed
and re-armed when the invocation that checkpointed it returns. With
``--skip-time`` the first timer fires at once; it completes the Wait on the
execution's lane and then, back on the scheduler, re-invokes the function. If the
invocation returns in between, re-arming cancels the first timer's coroutine
while it awaits the lane: the Wait completes (the history shows WaitSucceeded)
but the re-invocation is never made, and the second timer finds nothing due.
The execution then stays RUNNING with no operation pending, whichever SDK wrote
it (AWS's own is exposed the same way). It shows on a loaded machine, about one
run of the emulator tests in ten with both cores busy.

The fix makes the re-invocation a consequence of the lane task itself (a done
callback on its future), so cancelling the timer's coroutine can no longer drop
it; a lane task cancelled before it ran completes nothing and the re-armed timer
does its work, as before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from typing import Any


def apply() -> None:
    """Patch the emulator's Executor in this process (idempotent)."""
    from aws_durable_execution_sdk_python_testing import executor as ex
    from aws_durable_execution_sdk_python_testing.worker.checkpoint_tasks import CallableTask

    if getattr(ex.Executor, "_durable_gen_wakeup_fix", False):
        return

    def _fire_due_and_invoke_handler(
        self: Any, execution_arn: str
    ) -> Callable[[], Awaitable[None]]:
        async def fire_due() -> None:
            lane: Future[bool] = self._registry.submit(
                execution_arn,
                CallableTask(lambda: self._fire_due_operations(execution_arn)),
            )

            def after(done: Future[bool]) -> None:
                if done.cancelled() or done.exception() is not None:
                    return
                if done.result():
                    self._invoke_execution(execution_arn)
                self._schedule_earliest_pending(execution_arn)

            lane.add_done_callback(after)
            await asyncio.wrap_future(lane)

        return fire_due

    ex.Executor._fire_due_and_invoke_handler = _fire_due_and_invoke_handler  # type: ignore[method-assign]
    ex.Executor._durable_gen_wakeup_fix = True  # type: ignore[attr-defined]


def main() -> None:
    import sys

    apply()
    if "--skip-time" in sys.argv[1:]:
        from aws_durable_execution_sdk_python_testing.executor import Executor

        Executor.RETRY_BACKOFF_SECONDS = 0
    from aws_durable_execution_sdk_python_testing.cli import main as dex_main

    dex_main()


if __name__ == "__main__":
    main()
