"""Deterministic Temporal workflows: no I/O here, only decisions and waiting."""
