"""``python -m durable_gen``: the same as the ``durable-gen`` command."""

from ._cli import main

raise SystemExit(main())
