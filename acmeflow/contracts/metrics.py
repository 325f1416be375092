"""The names and histogram buckets of acmeflow's own Prometheus metrics.

Workflows record them; the process that serves ``/metrics`` configures the buckets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

ORDERS_COMPLETED: Final = "acmeflow_orders_completed"
ORDER_DURATION: Final = "acmeflow_order_duration_seconds"
CHALLENGE_DURATION: Final = "acmeflow_challenge_duration_seconds"

HISTOGRAM_BUCKETS: Final[Mapping[str, Sequence[float]]] = {
    # An order takes seconds against a nearby CA, minutes with DNS propagation or a
    # busy CA; the long tail is the self-check's and the CA's own timeouts (30 min).
    ORDER_DURATION: (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600),
    CHALLENGE_DURATION: (0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800),
}
