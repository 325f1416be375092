"""Fixtures of the DNS-01 provider tests; each provider's servers come from its own module."""
