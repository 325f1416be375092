"""Fixtures for the Certificate lifecycle tests: one import line per fixture module."""

from tests.bridge.conftest import bridge, kubectl, namespace, order_worker, queues  # noqa: F401
