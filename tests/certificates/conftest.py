"""Fixtures for the Certificate lifecycle tests: one import line per fixture module."""

from tests.bridge.conftest import bridge, kubectl, namespace, order_worker, queues  # noqa: F401
from tests.certificates.issuer_fixtures import (  # noqa: F401
    cluster_resource_namespace,
    issuers_bridge,
    issuers_eab_pebble,
)
from tests.certificates.names_fixtures import chains_pebble, profiles_pebble, promoting_pebble  # noqa: F401
from tests.certificates.status_fixtures import refusing_pebble  # noqa: F401
