"""Counters from a Prometheus text exposition, and what changed between two scrapes.

The benchmarks scrape kube-apiserver's and Temporal's ``/metrics`` before and after a run
and show where the requests went (which verbs on which resources, which persistence
operations), per order.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

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
