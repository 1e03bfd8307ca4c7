"""Change monitoring: snapshots and history, semantic diff with share impact, file
watching, scheduled audits, alert sinks with a persistent outbox, and metrics."""
