"""Requirements that cannot pass, with why: ``(target, id) -> explanation``.

Shown next to a FAIL in the report; they are not skipped.
"""

from __future__ import annotations

KNOWN_FAILURES: dict[tuple[str, str], str] = {}
