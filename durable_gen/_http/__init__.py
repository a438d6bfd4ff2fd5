"""``durable-gen serve``: the Lambda API over HTTP (and who may call it)."""
