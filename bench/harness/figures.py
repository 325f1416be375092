"""Percentiles of measured intervals, and the tables the scripts print them in.

A figure that could not be measured is NaN: it prints as ``nan`` rather than vanishing.
"""

from __future__ import annotations

import contextlib
import math
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence

NAN = float("nan")

Span = Callable[[str], float]
"""An interval of the object named, in seconds."""


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return NAN
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def p50(values: Sequence[float]) -> float:
    """The median (the mean of the middle two of an even count); NaN for no values."""
    return statistics.median(values) if values else NAN


def p95(values: Sequence[float]) -> float:
    return percentile(values, 0.95)


def mean_of(values: Sequence[float]) -> float:
    return statistics.mean(values) if values else NAN


def known(values: Iterable[float]) -> list[float]:
    """The values that were measured (not NaN)."""
    return [v for v in values if not math.isnan(v)]


def spans(names: Iterable[str], span: Span) -> list[float]:
    """One interval per name whose moments were all recorded.

    ``span`` raises ``KeyError`` or ``AttributeError`` for a name lacking a moment (no
    history, no such publish); NaN intervals are left out as well.
    """
    values = []
    for name in names:
        with contextlib.suppress(KeyError, AttributeError):
            values.append(span(name))
    return known(values)


def intervals(names: Sequence[str], by_label: dict[str, Span]) -> dict[str, list[float]]:
    """``spans`` of each label's interval, in the labels' order."""
    return {label: spans(names, span) for label, span in by_label.items()}


def p50_p95(prefix: str, values: Sequence[float]) -> dict[str, float]:
    """``<prefix>_p50_s`` and ``<prefix>_p95_s``, in ms resolution, for the JSON line."""
    return {f"{prefix}_p50_s": round(p50(values), 3), f"{prefix}_p95_s": round(p95(values), 3)}


def mean_breakdown(breakdowns: Sequence[dict[str, float]]) -> dict[str, float]:
    """The mean of each label's seconds over the breakdowns (a missing label counts 0)."""
    means: dict[str, float] = defaultdict(float)
    for breakdown in breakdowns:
        for label, seconds in breakdown.items():
            means[label] += seconds / len(breakdowns)
    return dict(means)


def print_intervals(title: str, intervals: dict[str, list[float]], width: int = 70) -> None:
    print(title)
    for label, values in intervals.items():
        print(
            f"  {label:<{width}} p50 {p50(values):7.3f}s  p95 {p95(values):7.3f}s  "
            f"max {max(values, default=NAN):7.3f}s  n={len(values)}"
        )


def print_breakdown(title: str, seconds: dict[str, float], *, column: int = 11) -> None:
    """Milliseconds by label, the largest first, right-aligned in ``column`` characters."""
    print(title)
    for label, spent in sorted(seconds.items(), key=lambda item: -item[1]):
        print(f"{spent * 1000:{column}.1f}  {label}")


def print_top(
    title: str, counts: dict[str, float], per: int, *, unit: str = "", top: int = 12
) -> None:
    """The ``top`` largest counts, each divided by ``per`` (the objects created)."""
    print(title)
    for key, value in sorted(counts.items(), key=lambda item: -item[1])[:top]:
        print(f"  {value / max(1, per):9.2f}{unit}  {key}")
