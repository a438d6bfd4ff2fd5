"""Conformance handlers: one durable_gen workflow per AWS conformance requirement.

Registration convention (stable; the harness in ``tests/conformance`` relies on it)
=================================================================================

One module per suite, ``tests/conformance/handlers/<suite>.py``, where ``<suite>``
is the requirement's directory name in the ``aws-durable-execution-conformance-tests``
package: ``step``, ``wait``, ``child``, ``callback``, ``invoke``,
``wait_for_condition``, ``wait_for_callback``, ``parallel``, ``map``, ``plugin``.
Each module exposes:

``HANDLERS: dict[str, Callable[[Any], Generator]]`` (required)
    Requirement id (``"1-1"``, the YAML file's stem) -> a durable_gen workflow
    function (a generator function) taking the **event**. Write it from the
    requirement's ``handler`` and ``invocations`` text.

``FUNCTIONS: dict[str, Callable[[Any], Generator]]`` (optional)
    Durable functions the workflows ``Invoke`` (chained-invoke targets), by
    function name: durable_gen workflow functions (generator functions; one that
    only returns is ``return x`` followed by a bare ``yield``). Use names
    prefixed with the suite (e.g. ``"invoke-echo"``): names are global across
    suites. Workflows pass that name to ``Invoke(name, payload)`` unchanged on
    both targets.

``HOOKS: dict[str, Callable[[], Sequence[durable_gen.Hooks]]]`` (optional)
    Requirement id -> a zero-argument factory returning the lifecycle hooks
    (plugins) to install for that requirement's handler, e.g.
    ``lambda: [MyPlugin()]``. It is called once per target run.

All functions (handlers, FUNCTIONS values) must be module-level functions of
the suite module: the embedded target imports them by ``module:name`` in a
``durable-gen serve`` process.

The event
---------
The event is the requirement's ``Input`` after variable substitution
(``${GEN_STR:N}`` etc.), exactly as the validator sends it as the Lambda
``Invoke`` payload, JSON-decoded: ``Input: World`` gives the ``str`` ``"World"``,
``Input: {"items": [1, 2]}`` gives a ``dict``; a missing Input gives ``{}``.
(The harness supplies it through the emulator's / ``durable-gen serve``'s
ExecutionStarted input; the workflow just receives the value.)

The workflow's return value is the execution's Result (compared with
``ExpectedResult.Result`` after ``json.loads``); an uncaught exception fails the
execution (``ExpectedResult.ExecutionStatus: FAILED``).

Logging
-------
Requirements with ``ExpectedLogs`` check log records the way CloudWatch
finds them: Lambda's JSON log format, filtered on a top-level
``durableExecutionArn`` or ``executionArn`` field equal to the execution's ARN.
Log with ``durable_gen.get_logger()`` (its records carry ``executionArn``;
``get_logger(name, log_replays=True)`` also logs while replaying), or print a
JSON object to stdout that carries ``durableExecutionArn`` yourself (hooks get
the ARN as their ``execution_id``). Other output is kept but never matched.

Timing
------
Both targets skip time (waits, retry back-off and wait-for-condition delays take
no wall time), so use the durations the requirement states.
"""

from __future__ import annotations

SUITES: tuple[str, ...] = (
    "step",
    "wait",
    "child",
    "callback",
    "invoke",
    "wait_for_condition",
    "wait_for_callback",
    "parallel",
    "map",
    "plugin",
)
