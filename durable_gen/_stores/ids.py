"""Ids a store makes up: callback ids (random, so they live here, not in the pure core)."""

from __future__ import annotations

import secrets

__all__ = ["new_callback_id"]


def new_callback_id(op_id: str) -> str:
    """A fresh, unguessable callback id (256 random bits, URL-safe base64).

    Never one that starts with ``-``: ``durable-gen callback succeed ID`` would
    take it for an option (1 id in 64 would otherwise).
    """
    while True:
        callback_id = secrets.token_urlsafe(32)
        if not callback_id.startswith("-"):
            return callback_id
