"""Engines: they perform what the pure interpreter asks for.

The driver runs an invocation (step functions on threads, checkpoints through the
store), the local engine's resume loop fires timers and re-invokes, the durable
engine adds leases and the worker loop for stores that processes share; clocks,
hooks, the replay-aware logger, metering and the loading of workflows by name live
here too. Engines import the core and the stores, never the edges.
"""
