"""What an order workflow tells Prometheus: final states, order and challenge durations.

Recorded through ``workflow.metric_meter()``, which records nothing while a history is
replayed, so a worker restart or a cache eviction never counts an order twice. The
worker serves these beside the Temporal SDK's own metrics on one endpoint
(``--metrics-bind``); counters gain the ``_total`` suffix there.
"""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow

from acmeflow.contracts.metrics import CHALLENGE_DURATION, ORDER_DURATION, ORDERS_COMPLETED


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
