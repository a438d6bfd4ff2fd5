"""``python -m durable_gen``: the same as the ``durable-gen`` command."""

from ._cli.main import main

raise SystemExit(main())
