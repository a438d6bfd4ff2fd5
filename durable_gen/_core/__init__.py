"""The pure core: descriptors, the log model, the interpreter, serialization, retry
policies, batch results, the durable service's rules, the store contract, errors.

Nothing here performs I/O, reads a clock, draws random numbers or starts a thread:
given the same workflow, input and log, the interpreter produces the same commands.
Everything else in durable_gen imports from here; nothing here imports from
elsewhere in durable_gen (trio keeps its ``_core`` apart the same way).
"""
