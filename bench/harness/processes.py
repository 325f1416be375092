"""CPU seconds, CPU waits and resident memory of processes, read from ``/proc``."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

MB = 1024.0
"""kB in a MB, as ``/proc/<pid>/status`` counts."""


@dataclass(frozen=True)
class CpuSample:
    """CPU seconds used so far by each watched process, and by the whole machine."""

    by_process: dict[str, float]
    machine_busy: float
    machine_total: float


def _process_cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_sample(pids: dict[str, int]) -> CpuSample:
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = ticks[3] + ticks[4]
    clock = os.sysconf("SC_CLK_TCK")
    return CpuSample(
        by_process={name: _process_cpu_s(pid) for name, pid in pids.items()},
        machine_busy=(sum(ticks) - idle) / clock,
        machine_total=sum(ticks) / clock,
    )


def machine_busy(before: CpuSample, after: CpuSample) -> float:
    """The share of the machine's CPU time that was busy between the samples."""
    busy_s = after.machine_busy - before.machine_busy
    return busy_s / max(1e-9, after.machine_total - before.machine_total)


class CpuFigures(Protocol):
    """What ``record_cpu`` fills: every benchmark's phase or run has these."""

    cpu_s: dict[str, float]
    other_cpu_s: float
    machine_busy: float


def record_cpu(figures: CpuFigures, before: CpuSample, after: CpuSample) -> None:
    """CPU seconds of each watched process between the samples, and of all the others."""
    figures.cpu_s = {n: after.by_process[n] - before.by_process[n] for n in before.by_process}
    busy_s = after.machine_busy - before.machine_busy
    figures.other_cpu_s = busy_s - sum(figures.cpu_s.values())
    figures.machine_busy = machine_busy(before, after)


def cpu_wait_s(pid: int) -> float:
    """Seconds the process's threads spent runnable but waiting for a CPU (schedstat)."""
    waited = 0
    for stat in Path(f"/proc/{pid}/task").glob("*/schedstat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            waited += int(stat.read_text().split()[1])
    return waited / 1e9


def proc_status_kb(pid: int, field_name: str) -> int | None:
    """A ``kB`` figure of ``/proc/<pid>/status`` (VmHWM, VmRSS)."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field_name}:"):
                return int(line.split()[1])
    return None


def rss_mb(pids: dict[str, int], field_name: str) -> dict[str, float]:
    """``VmRSS`` (now) or ``VmHWM`` (the peak) of each process in MB; 0 for one gone."""
    return {n: (proc_status_kb(pid, field_name) or 0) / MB for n, pid in pids.items()}


def reset_peak_rss(pid: int) -> bool:
    """Start the kernel's high-water mark of the resident set anew (``clear_refs`` 5)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True
