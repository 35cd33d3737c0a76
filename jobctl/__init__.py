"""Operator tooling: the jobctl CLI, the local scheduler and the embedded Postgres.

Nothing here goes into the Lambda asset."""
