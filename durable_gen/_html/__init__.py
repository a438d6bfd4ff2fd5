"""The self-contained HTML timeline of an execution."""
