"""Workflow building blocks made of operations: :func:`with_retry`.

They are plain generator code over the descriptors (what a user could write), kept
here because they read the running execution's identity from the engine (the
jitter of a retry's delay must differ between executions yet be the same on every
replay of one).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

from .._core.descriptors import ChildContext, Wait, check_generator_callable
from .._core.errors import ValidationError
from .._core.retry import RetryPolicy
from .logger import current

__all__ = ["with_retry"]


def with_retry(
    fn: Callable[..., Generator[Any, Any, Any]],
    *args: Any,
    retry: RetryPolicy | None = None,
    name: str | None = None,
    child: bool = True,
    sub_type: str | None = None,
) -> Any:
    """Run the generator function ``fn(*args, attempt)`` again, from its start, while
    it raises and ``retry`` allows (AWS's ``with_retry``).

    Unlike a step's retries, which repeat one function, this repeats a block of
    operations (steps, waits, callbacks, invokes...). Between attempts it waits the
    delay ``retry`` decides (``RetryPolicy.default()`` when omitted) as a durable
    ``Wait`` named ``"{name}-backoff-{attempt}"``. With ``child=True`` (the default)
    the attempts run in one child context named ``name``: ``yield with_retry(...)``;
    an error left when retries are exhausted fails that context
    (:class:`~durable_gen.ChildContextError`). With ``child=False`` they run in the
    caller's context: ``yield from with_retry(...)``, and the last error is raised
    as it is.
    """
    check_generator_callable(fn, "with_retry's function")
    policy = RetryPolicy.default() if retry is None else retry
    if not isinstance(policy, RetryPolicy):
        raise ValidationError(f"retry must be a RetryPolicy or None, got {retry!r:.60}")

    def attempts() -> Generator[Any, Any, Any]:
        attempt = 0
        while True:
            attempt += 1
            try:
                return (yield from fn(*args, attempt))
            except Exception as error:
                decision = policy.decide(error, attempt, jitter_key=_jitter_key(name))
                if not decision.retry:
                    raise
                backoff = f"{name}-backoff-{attempt}" if name else None
                yield Wait(seconds=decision.delay_seconds, name=backoff)

    if child:
        return ChildContext(attempts, name=name, sub_type=sub_type)
    return attempts()


def _jitter_key(name: str | None) -> str:
    """The execution and context the attempts run in: one key per retried block."""
    ctx = current.get()
    fields = ctx.fields() if ctx is not None else {}  # (none outside an engine)
    return f"{fields.get('execution_id')}/{fields.get('operation_id')}/with_retry/{name}"
