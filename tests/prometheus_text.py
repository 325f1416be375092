"""Read a Prometheus ``/metrics`` page (text format 0.0.4) the way a test needs it."""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from dataclasses import dataclass

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


def parse(text: str) -> list[Sample]:
    samples = []
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if not match or line.startswith("#"):
            continue
        name, labels, value = match.groups()
        pairs = {
            key: raw.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")
            for key, raw in _LABEL.findall(labels or "")
        }
        samples.append(Sample(name, pairs, float(value)))
    return samples


def scrape(bind: str, timeout: float = 5.0) -> list[Sample] | None:
    """The samples served at ``http://<bind>/metrics``; None while nothing answers."""
    try:
        with urllib.request.urlopen(f"http://{bind}/metrics", timeout=timeout) as response:
            return parse(response.read().decode())
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def total(samples: list[Sample], name: str, **labels: str) -> float:
    """Sum of ``name`` over every series carrying at least ``labels``."""
    return sum(
        s.value
        for s in samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def names(samples: list[Sample]) -> set[str]:
    return {s.name for s in samples}
