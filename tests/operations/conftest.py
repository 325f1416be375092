"""Operations tests run on the bridge tests' fixtures: CRDs, a bridge, an order worker."""

from __future__ import annotations

from tests.bridge.conftest import artifacts, bridge, kubectl, namespace, order_worker, queues

__all__ = ["artifacts", "bridge", "kubectl", "namespace", "order_worker", "queues"]
