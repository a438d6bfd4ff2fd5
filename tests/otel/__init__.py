"""AWS's OpenTelemetry requirements run on durable_gen (see ``_runner``)."""
