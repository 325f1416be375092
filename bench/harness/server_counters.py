"""kube-apiserver's and Temporal's own counters, scraped before and after a run.

Both servers expose Prometheus text on ``/metrics``; the difference of two scrapes shows
where a run's requests went (which verbs on which resources, which persistence operations,
which task queues), per object created.
"""

from __future__ import annotations

import contextlib
import re
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from harness.acmeflow_api import StackInfo
from harness.figures import NAN, print_top
from harness.kube import Kube

# -- Prometheus text -------------------------------------------------------------------

_SAMPLE = re.compile(r"^([A-Za-z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class Sample:
    name: str
    labels: Mapping[str, str]
    value: float


def parse_samples(text: str, names: set[str]) -> list[Sample]:
    """The samples of the metrics named in ``names`` (histogram parts by full name)."""
    samples = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if match is None or match[1] not in names:
            continue
        try:
            value = float(match[3])
        except ValueError:
            continue
        samples.append(Sample(match[1], dict(_LABEL.findall(match[2] or "")), value))
    return samples


Grouping = Callable[[Mapping[str, str]], str]
"""Names the group a sample's labels belong to."""


def totals(samples: list[Sample], name: str, group: Grouping) -> dict[str, float]:
    """Sum of the samples of one metric, by group."""
    summed: dict[str, float] = defaultdict(float)
    for sample in samples:
        if sample.name == name:
            summed[group(sample.labels)] += sample.value
    return dict(summed)


def increase(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """How much each group grew (a counter reset shows as its value after)."""
    grown = {}
    for key, value in after.items():
        delta = value - before.get(key, 0.0)
        if delta < 0:
            delta = value
        if delta > 0:
            grown[key] = delta
    return grown


# -- the groups ------------------------------------------------------------------------


def api_request_group(labels: Mapping[str, str]) -> str:
    """kube-apiserver requests by ``VERB resource[/subresource]`` and a code other than 2xx.

    Request seconds are not counted by response code: a non-2xx group has no latency.
    """
    subresource = labels.get("subresource", "")
    code = labels.get("code", "")
    return (
        f"{labels.get('verb', '')} {labels.get('resource', '')}"
        + (f"/{subresource}" if subresource else "")
        + ("" if not code or code.startswith("2") else f" {code}")
    )


def resource_group(labels: Mapping[str, str]) -> str:
    """Objects LISTs read from etcd and returned, watch events and bytes sent, by resource."""
    return labels.get("resource", "")


def task_queue_group(labels: Mapping[str, str]) -> str:
    """Temporal tasks and polls by ``type queue [sticky]``."""
    sticky = " sticky" if labels.get("partition") == "__sticky__" else ""
    return f"{labels.get('task_type', '')} {labels.get('taskqueue', '')}{sticky}"


def persistence_group(labels: Mapping[str, str]) -> str:
    """Temporal persistence (SQLite) operations by ``service operation``."""
    return f"{labels.get('service_name', '')} {labels.get('operation', '')}"


GROUPED_BY: dict[Grouping, tuple[str, ...]] = {
    api_request_group: ("apiserver_request_total", "apiserver_request_duration_seconds_sum"),
    resource_group: (
        "apiserver_storage_list_fetched_objects_total",
        "apiserver_storage_list_returned_objects_total",
        "apiserver_watch_events_total",
        "apiserver_watch_events_sizes_sum",
    ),
    persistence_group: ("persistence_latency_count", "persistence_latency_sum"),
    task_queue_group: (
        "task_schedule_to_start_latency_count",
        "task_schedule_to_start_latency_sum",
        "poll_success",
        "poll_success_sync",
    ),
}
"""The metrics scraped, by how their samples are grouped."""
_APISERVER = {m for metrics in GROUPED_BY.values() for m in metrics if m.startswith("apiserver_")}
_TEMPORAL = {m for metrics in GROUPED_BY.values() for m in metrics} - _APISERVER


# -- the counters ----------------------------------------------------------------------


@dataclass(frozen=True)
class ServerCounters:
    """Counters of kube-apiserver and Temporal: by metric, each by its group (``GROUPED_BY``)."""

    by_metric: dict[str, dict[str, float]] = field(default_factory=dict)

    def __getitem__(self, metric: str) -> dict[str, float]:
        return self.by_metric.get(metric, {})

    def increase_to(self, after: ServerCounters) -> ServerCounters:
        """What each counter grew by from this scrape to ``after``."""
        return ServerCounters({m: increase(self[m], after[m]) for m in after.by_metric})

    def api_requests(self) -> float:
        """kube-apiserver requests of every client, every verb and resource."""
        return sum(self["apiserver_request_total"].values())


def apiserver_metrics(kube: Kube) -> str:
    method, url, headers, _, _ = kube.api_client.param_serialize(
        "GET", "/metrics", auth_settings=["BearerToken"]
    )
    response = kube.api_client.call_api(method, url, header_params=headers)
    response.read()
    return bytes(response.data).decode()


def temporal_metrics(stack: StackInfo) -> str:
    url = f"http://127.0.0.1:{stack.ports.temporal_metrics}/metrics"
    with urllib.request.urlopen(url, timeout=30) as response:
        return bytes(response.read()).decode()


def scrape_counters(stack: StackInfo, kube: Kube) -> ServerCounters:
    """Both servers' counters now; empty where a server did not answer."""
    samples: list[Sample] = []
    with contextlib.suppress(ApiException, HTTPError, OSError):
        samples += parse_samples(apiserver_metrics(kube), _APISERVER)
    with contextlib.suppress(OSError):
        samples += parse_samples(temporal_metrics(stack), _TEMPORAL)
    return counters_of(samples)


def counters_of(samples: list[Sample]) -> ServerCounters:
    """The scraped metrics' samples summed by their groups."""
    return ServerCounters(
        {
            metric: totals(samples, metric, group)
            for group, metrics in GROUPED_BY.items()
            for metric in metrics
        }
    )


# -- printing --------------------------------------------------------------------------


def print_task_queues(counters: ServerCounters) -> None:
    print("Temporal task queues: tasks started, mean schedule-to-start, share matched at once:")
    waits, polls = counters["task_schedule_to_start_latency_sum"], counters["poll_success"]
    synced = counters["poll_success_sync"]
    started = counters["task_schedule_to_start_latency_count"]
    for queue, count in sorted(started.items(), key=lambda item: -item[1]):
        share = synced.get(queue, 0.0) / polls[queue] if polls.get(queue) else NAN
        print(f"  {count:7.0f}  {waits.get(queue, 0.0) / count:7.3f}s  {share:5.0%}  {queue}")


def print_counters(counters: ServerCounters, *, per: int, noun: str, wall_s: float) -> None:
    """What both servers counted during the run, per object created (``noun``: order)."""
    print(f"kube-apiserver requests per {noun} (all clients), mean latency (2xx and others):")
    requests = counters["apiserver_request_total"]
    request_s = counters["apiserver_request_duration_seconds_sum"]
    for key, count in sorted(requests.items(), key=lambda item: -item[1])[:14]:
        seconds = request_s.get(key)
        latency = f"{seconds / count:7.3f}s" if seconds is not None else "       -"
        print(f"  {count / max(1, per):9.2f}  {latency}  {key}")
    fetched = counters["apiserver_storage_list_fetched_objects_total"]
    returned = counters["apiserver_storage_list_returned_objects_total"]
    for resource, read in sorted(fetched.items(), key=lambda item: -item[1])[:3]:
        print(
            f"  LISTs of {resource} read {read:.0f} objects from etcd to return "
            f"{returned.get(resource, 0):.0f}"
        )
    print_top(
        f"kube-apiserver watch events sent per {noun}:",
        counters["apiserver_watch_events_total"],
        per,
        top=6,
    )
    kib = {k: v / 1024 for k, v in counters["apiserver_watch_events_sizes_sum"].items()}
    print_top(f"kube-apiserver watch event bytes per {noun}:", kib, per, unit=" KiB", top=6)
    calls, latency_s = counters["persistence_latency_count"], counters["persistence_latency_sum"]
    print_top(f"Temporal persistence calls per {noun}:", calls, per, top=8)
    print_top(
        f"Temporal persistence time per {noun} (sum of call latencies):",
        latency_s,
        per,
        unit=" s",
        top=8,
    )
    print(
        f"  all persistence calls: {sum(latency_s.values()):.1f} s of latency "
        f"in {wall_s:.1f} s (Temporal's SQLite plugin: one connection unless MaxConns is set)"
    )
    print_task_queues(counters)
