"""What the fault benchmark shares with the test suite; ``bench/`` imports it from here only.

The ACME proxy that counts new-orders and the check that a certificate names what was
asked for with the right key live with the tests (``tests/orders/``); the benchmark runs
the same scenario as ``tests/k8s/test_faults_at_load.py``, so it uses the same ones. As
``python bench/<script>.py`` puts only ``bench/`` on the path, the repository root is
added (last, so nothing of ``bench/`` is shadowed).
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.append(str(REPO))

from tests.orders.durability_proxy import AcmeProxy  # noqa: E402
from tests.orders.order_harness import assert_certificate  # noqa: E402

__all__ = ["AcmeProxy", "assert_certificate", "orders_created"]


def orders_created(proxy: AcmeProxy) -> list[str]:
    """URL of every order the CA created through the proxy (a 201 to new-order)."""
    created = proxy.orders_created
    # The proxy is being extended elsewhere; accept the count as a property or a method.
    return list(created() if callable(created) else created)
