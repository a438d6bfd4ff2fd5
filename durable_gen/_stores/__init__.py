"""Stores: where executions are kept, each keeping the store contract
(``_core.contract``): in memory, on SQLite (with lease owners' liveness), and an
encrypting wrapper. Stores import only the core.
"""
