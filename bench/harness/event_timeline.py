"""Where a Certificate's time goes, read the same way for every system: from its Events.

cert-manager keeps no history but its Events; acmeflow writes the reference system's
Events too. A watch on the namespace's core/v1 Events notes when this process first saw
each reason for each object (an Event's own timestamps have whole seconds only), and each
object is traced back to its Certificate by name: a CertificateRequest is
``<certificate>-<revision>``, an Order ``<request or certificate>-<hash>``, a Challenge
``<order>-<hash>``, in cert-manager and in acmeflow alike.

A milestone is ``<writer>: <kind> <reason>`` (``cert-manager: Challenge Presented``; the
writer is the project whose controller wrote the Event, as its source component says) at
its offset from the Certificate's create; the timeline sets the milestones of all Ready
Certificates in order of their median offset.
"""

from __future__ import annotations

import math
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from kubernetes import watch

from harness.figures import NAN, p50, p95
from harness.kube import WATCH_TIMEOUT_S, Kube, ListThenWatch

PRESENTED = "Challenge Presented"
VERIFIED = "Challenge DomainVerified"
READY_SEEN = "Certificate Ready (resource watch)"

Milestones = dict[str, float]
"""Milestone -> epoch seconds it was first seen, for one Certificate."""


def emitter_of(event: Any) -> str:
    """Which project wrote the Event: cert-manager's controllers or acmeflow's bridge."""
    source = event.source.component if event.source is not None else ""
    component = str(source or event.reporting_component or "")
    for project in ("cert-manager", "acmeflow"):
        if component.startswith(project):
            return project
    return component or "(unknown)"


def certificate_of(name: str, certificates: frozenset[str]) -> str | None:
    """The Certificate an object's name derives from, dropping ``-<suffix>`` parts in turn."""
    while name:
        if name in certificates:
            return name
        name = name.rpartition("-")[0]
    return None


class EventWatch(ListThenWatch):
    """First sight of every (object, reason) of one namespace's Events, from a list then a watch.

    What a list after a broken watch shows first is counted in ``relisted``.
    """

    def __init__(self, kube: Kube, namespace: str) -> None:
        super().__init__()
        self._core = kube.core
        self._namespace = namespace
        self._lock = threading.Lock()
        self._first: dict[tuple[str, str, str, str], float] = {}
        self.relisted = 0

    def _relist(self, *, listed: bool) -> str:
        listing = self._core.list_namespaced_event(self._namespace)
        now = time.time()
        for event in listing.items:
            if self._note(event, now) and listed:
                self.relisted += 1
        return str(listing.metadata.resource_version)

    def _stream(self, version: str) -> str:
        self._watch = watch.Watch()
        for change in self._watch.stream(
            self._core.list_namespaced_event,
            self._namespace,
            resource_version=version,
            timeout_seconds=WATCH_TIMEOUT_S,
        ):
            event = change["object"]
            version = str(event.metadata.resource_version)
            if change["type"] in ("ADDED", "MODIFIED"):
                self._note(event, time.time())
            if self._stop.is_set():
                break
        return version

    def _note(self, event: Any, now: float) -> bool:
        involved = event.involved_object
        key = (emitter_of(event), involved.kind, involved.name, event.reason)
        with self._lock:
            if key in self._first:
                return False
            self._first[key] = now
            return True

    def milestones(
        self, certificates: Iterable[str], *, until: float = math.inf
    ) -> dict[str, Milestones]:
        """Each Certificate's milestones, the first sight of each over all its objects.

        Events first seen after ``until`` are left out (the namespace's deletion, say).
        """
        wanted = frozenset(certificates)
        found: dict[str, Milestones] = defaultdict(dict)
        with self._lock:
            first = dict(self._first)
        for (emitter, kind, name, reason), seen in first.items():
            certificate = certificate_of(name, wanted)
            if certificate is None or seen > until:
                continue
            label = f"{emitter}: {kind} {reason}"
            found[certificate][label] = min(seen, found[certificate].get(label, seen))
        return dict(found)


def offsets(
    milestones: Mapping[str, Milestones], since: Mapping[str, float]
) -> dict[str, list[float]]:
    """Seconds from each Certificate's ``since`` to each of its milestones, by milestone."""
    by_label: dict[str, list[float]] = defaultdict(list)
    for name, start in since.items():
        for label, seen in milestones.get(name, {}).items():
            by_label[label].append(seen - start)
    return dict(by_label)


def timeline(by_label: Mapping[str, list[float]]) -> list[tuple[str, float, float, int]]:
    """(milestone, p50, p95, count) in order of the median offset."""
    rows = [(label, p50(values), p95(values), len(values)) for label, values in by_label.items()]
    return sorted(rows, key=lambda row: row[1])


def print_timeline(title: str, by_label: Mapping[str, list[float]]) -> None:
    """The milestones in order; the step column is the median's growth from the row above."""
    print(title)
    print(f"  {'after create p50':>16} {'p95':>9} {'step':>9}  {'n':>4}  milestone")
    before = 0.0
    for label, median, high, count in timeline(by_label):
        print(f"  {median:15.2f}s {high:8.2f}s {median - before:+8.2f}s  {count:4d}  {label}")
        before = median


def presented_to_verified_p50(milestones: Mapping[str, Milestones]) -> float:
    """The self-check and validation of a DNS-01 challenge (cert-manager sleeps 60 s here)."""
    gaps = []
    for found in milestones.values():
        presented = [t for label, t in found.items() if label.endswith(PRESENTED)]
        verified = [t for label, t in found.items() if label.endswith(VERIFIED)]
        if presented and verified:
            gaps.append(min(verified) - min(presented))
    return round(p50(gaps), 3) if gaps else NAN
