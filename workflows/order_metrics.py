"""What an order workflow tells Prometheus: final states, order and challenge durations.

Recorded through ``workflow.metric_meter()``, which records nothing while a history is
replayed, so a worker restart or a cache eviction never counts an order twice. The
worker serves these beside the Temporal SDK's own metrics on one endpoint
(``--metrics-bind``); counters gain the ``_total`` suffix there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Final

from temporalio import workflow

ORDERS_COMPLETED: Final = "acmeflow_orders_completed"
ORDER_DURATION: Final = "acmeflow_order_duration_seconds"
CHALLENGE_DURATION: Final = "acmeflow_challenge_duration_seconds"

HISTOGRAM_BUCKETS: Final[Mapping[str, Sequence[float]]] = {
    # An order takes seconds against a nearby CA, minutes with DNS propagation or a
    # busy CA; the long tail is the self-check's and the CA's own timeouts (30 min).
    ORDER_DURATION: (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600),
    CHALLENGE_DURATION: (0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800),
}


def record_order_finished(state: str) -> None:
    """Count the order's final state and how long it took from the workflow's start."""
    meter = workflow.metric_meter()
    meter.create_counter(
        ORDERS_COMPLETED, "Orders that reached a final state (valid, invalid, expired, errored)"
    ).with_additional_attributes({"state": state}).add(1)
    elapsed = (workflow.now() - workflow.info().workflow_start_time).total_seconds()
    meter.create_histogram_float(
        ORDER_DURATION, "Order workflow start to its final state", "s"
    ).record(max(elapsed, 0.0))


def record_challenge_verdict(challenge_type: str, presenting_since: datetime) -> None:
    """How long one challenge took from presenting to the CA's verdict (valid or invalid)."""
    elapsed = (workflow.now() - presenting_since).total_seconds()
    workflow.metric_meter().create_histogram_float(
        CHALLENGE_DURATION, "Challenge presented to verified or failed, by type", "s"
    ).with_additional_attributes({"type": challenge_type}).record(max(elapsed, 0.0))
