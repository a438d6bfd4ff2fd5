"""The ``durable-gen`` command: an edge over the engines and stores."""
