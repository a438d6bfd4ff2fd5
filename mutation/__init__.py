"""Mutation testing for durable_gen's pure core (issue 29): ``python -m mutation``.

See ``mutation/README.md``. The runner copies the tree to a scratch directory and runs
mutmut there, so the working tree is never mutated, even when a run is interrupted.
"""
