"""AWS durable-execution conformance requirements, run against durable_gen (issue 6).

See ``handlers/__init__.py`` for how handlers are registered and ``_harness`` for
the two targets; ``python -m tests.conformance --target emulator|embedded``
prints a report, ``pytest -m conformance tests/conformance`` runs them as tests.
"""
