"""The benchmark harness's pure parts: percentiles, summaries, counters, history timing."""

from __future__ import annotations

import json
import math

from google.protobuf.message import Message
from harness.figures import mean_breakdown, p50, p50_p95, p95, percentile, spans
from harness.histories import WORKFLOW_RUN, history_breakdown, order_times
from harness.server_counters import counters_of, increase, parse_samples
from temporalio.api.common.v1 import ActivityType, Payload, Payloads
from temporalio.api.history.v1 import (
    ActivityTaskCompletedEventAttributes,
    ActivityTaskScheduledEventAttributes,
    ActivityTaskStartedEventAttributes,
    HistoryEvent,
    WorkflowExecutionStartedEventAttributes,
    WorkflowTaskCompletedEventAttributes,
    WorkflowTaskScheduledEventAttributes,
    WorkflowTaskStartedEventAttributes,
)
from temporalio.client import WorkflowHistory


def test_percentiles_are_nearest_rank_and_nan_for_nothing() -> None:
    values = [float(v) for v in range(20, 0, -1)]
    assert percentile(values, 0.95) == 19.0
    assert p95(values) == 19.0
    assert p50([1.0, 2.0, 3.0, 10.0]) == 2.5
    assert math.isnan(p50([]))
    assert math.isnan(p95([]))


def test_p50_p95_names_the_json_keys_and_rounds_to_milliseconds() -> None:
    assert p50_p95("bridge_lag", [0.1, 0.2004, 0.30049]) == {
        "bridge_lag_p50_s": 0.2,
        "bridge_lag_p95_s": 0.3,
    }


def test_spans_leave_out_what_was_not_recorded() -> None:
    moments = {"a": 1.0, "b": float("nan")}
    assert spans(["a", "b", "c"], lambda n: moments[n] + 1) == [2.0]


def test_mean_breakdown_counts_a_missing_label_as_zero() -> None:
    assert mean_breakdown([{"x": 1.0, "y": 2.0}, {"x": 3.0}]) == {"x": 2.0, "y": 1.0}


API_BEFORE = """\
# HELP apiserver_request_total Counter of apiserver requests.
apiserver_request_total{code="200",resource="orders",verb="GET"} 3
apiserver_request_total{code="201",resource="orders",verb="POST"} 1
apiserver_request_total{code="404",resource="secrets",verb="GET"} 2
"""
API_AFTER = """\
apiserver_request_total{code="200",resource="orders",verb="GET"} 10
apiserver_request_total{code="201",resource="orders",verb="POST"} 6
apiserver_request_total{code="200",resource="orders",subresource="status",verb="PATCH"} 4
apiserver_request_total{code="404",resource="secrets",verb="GET"} 2
poll_success{task_type="Workflow",taskqueue="acmeflow",partition="__sticky__"} 7
not_scraped_total 99
"""


def test_counters_group_samples_and_keep_only_what_grew() -> None:
    names = {"apiserver_request_total", "poll_success"}
    before = counters_of(parse_samples(API_BEFORE, names))
    grown = before.increase_to(counters_of(parse_samples(API_AFTER, names)))
    assert grown["apiserver_request_total"] == {
        "GET orders": 7.0,
        "POST orders": 5.0,
        "PATCH orders/status": 4.0,
    }
    assert grown["poll_success"] == {"Workflow acmeflow sticky": 7.0}
    assert grown.api_requests() == 16.0
    assert grown["persistence_latency_count"] == {}


def test_increase_takes_a_counter_reset_as_its_value_after() -> None:
    assert increase({"a": 10.0, "b": 1.0}, {"a": 3.0, "b": 1.0}) == {"a": 3.0}


def _event(event_id: int, at_ms: int, attributes: Message) -> HistoryEvent:
    """An event of the kind ``attributes`` are (the oneof field of their type)."""
    event = HistoryEvent(event_id=event_id)
    event.event_time.FromMilliseconds(at_ms)
    kinds = HistoryEvent.DESCRIPTOR.oneofs_by_name["attributes"].fields
    kind = next(f.name for f in kinds if f.message_type is attributes.DESCRIPTOR)
    getattr(event, kind).CopyFrom(attributes)
    return event


def _activity(first_id: int, at_ms: int, name: str, payload: object) -> list[HistoryEvent]:
    """Scheduled at ``at_ms``, started 10 ms later, completed 30 ms after that."""
    data = Payloads(payloads=[Payload(data=json.dumps(payload).encode())])
    scheduled = ActivityTaskScheduledEventAttributes(
        activity_type=ActivityType(name=name), input=data
    )
    return [
        _event(first_id, at_ms, scheduled),
        _event(
            first_id + 1,
            at_ms + 10,
            ActivityTaskStartedEventAttributes(scheduled_event_id=first_id, attempt=1),
        ),
        _event(
            first_id + 2,
            at_ms + 40,
            ActivityTaskCompletedEventAttributes(
                scheduled_event_id=first_id, started_event_id=first_id + 1
            ),
        ),
    ]


def _workflow_task(first_id: int, at_ms: int) -> list[HistoryEvent]:
    """Scheduled at ``at_ms``, started 5 ms later, completed 15 ms after that."""
    return [
        _event(first_id, at_ms, WorkflowTaskScheduledEventAttributes()),
        _event(
            first_id + 1, at_ms + 5, WorkflowTaskStartedEventAttributes(scheduled_event_id=first_id)
        ),
        _event(
            first_id + 2,
            at_ms + 20,
            WorkflowTaskCompletedEventAttributes(
                scheduled_event_id=first_id, started_event_id=first_id + 1
            ),
        ),
    ]


def _order_history() -> WorkflowHistory:
    """Started at 1 s; downloads, then publishes ``valid`` from the task that decided it."""
    started = WorkflowExecutionStartedEventAttributes()
    events = [
        _event(1, 1000, started),
        *_workflow_task(2, 1000),
        *_activity(5, 1020, "download_certificate", "certificate"),
        *_workflow_task(8, 1060),
        *_activity(11, 1080, "publish_order_progress", {"progress": {"state": "valid"}}),
    ]
    return WorkflowHistory("order/ns/name", events)


def test_order_times_find_the_task_that_decided_and_the_final_publish() -> None:
    times = order_times(_order_history())
    assert times.started == 1.0
    assert times.download_completed == 1.06
    assert times.decided == 1.08
    assert times.final_publish is not None
    assert (times.final_publish.scheduled, times.final_publish.completed) == (1.08, 1.12)
    assert times.activities == {"download_certificate": 1, "publish_order_progress": 1}
    assert times.workflow_tasks == 2


def test_history_breakdown_sums_the_run_by_kind_of_interval() -> None:
    spent = history_breakdown(_order_history())
    assert math.isclose(spent[WORKFLOW_RUN], 0.12)
    assert math.isclose(spent["activity: queued"], 0.02)
    assert math.isclose(spent["activity download_certificate"], 0.03)
    assert math.isclose(spent["workflow task: queued"], 0.01)
    assert math.isclose(spent["workflow task: run + respond"], 0.03)
