"""Temporal activities: one idempotent protocol step each, safe to re-run anywhere."""
