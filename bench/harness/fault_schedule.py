"""When a fault run kills what: a fixed schedule driven by progress, not by the clock.

Progress is what an operator could count from outside: new-orders the CA created and
challenge and finalize requests it received (the ACME proxy counts them), and
Certificates Ready (the API server shows them). Each kill waits for its threshold (a
share of the Certificates, at least one) and for some progress since the previous
restart, so every kill hits a system that has recovered from the one before, with
work in flight. A threshold already passed fires as soon as that is true.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields


@dataclass(frozen=True)
class Progress:
    """Counts at one moment of the run."""

    new_orders: int = 0
    """Orders the CA created (201 to new-order, through the proxy)."""
    challenge_requests: int = 0
    """POSTs to challenge URLs (answers and polls)."""
    finalize_requests: int = 0
    """POSTs to finalize URLs."""
    ready: int = 0
    """Certificates showing Ready=True."""
    failed: int = 0
    """Certificates whose issuance failed (and now back off): they count as done."""

    def beyond(self, other: Progress) -> bool:
        """Some count grew since ``other``."""
        return any(getattr(self, f.name) > getattr(other, f.name) for f in fields(self))

    def shown(self) -> str:
        return (
            f"{self.new_orders} new-orders, {self.challenge_requests} challenge requests, "
            f"{self.finalize_requests} finalize requests, {self.ready} Ready"
            + (f", {self.failed} failed" if self.failed else "")
        )


@dataclass(frozen=True)
class Kill:
    """SIGKILL ``target`` once ``measure`` reached ``share`` of the Certificates."""

    target: str
    """``worker``, ``bridge`` or ``temporal``."""
    measure: str
    """A field of ``Progress``."""
    share: float

    def threshold(self, certificates: int) -> int:
        return max(1, math.ceil(self.share * certificates))

    def due(self, progress: Progress, certificates: int) -> bool:
        return int(getattr(progress, self.measure)) >= self.threshold(certificates)

    def trigger(self, certificates: int) -> str:
        return f"{self.measure.replace('_', ' ')} >= {self.threshold(certificates)}"


SCHEDULE: tuple[Kill, ...] = (
    Kill("worker", "new_orders", 0.25),
    Kill("bridge", "challenge_requests", 0.25),
    Kill("temporal", "finalize_requests", 0.2),
    Kill("worker", "ready", 0.25),
    Kill("worker", "ready", 0.5),
)
"""The worker three times, the bridge once, the Temporal server once."""


@dataclass(frozen=True)
class KillRecord:
    """One kill as it happened."""

    target: str
    trigger: str
    at_s: float
    """Seconds since the first Certificate was created."""
    progress: Progress
    killed_pid: int
    started_pid: int
    restart_s: float
    """SIGKILL -> the new process answered."""

    def shown(self) -> str:
        return (
            f"{self.at_s:7.1f}s  SIGKILL {self.target} (pid {self.killed_pid}; {self.trigger}; "
            f"at {self.progress.shown()}), up again as pid {self.started_pid} "
            f"after {self.restart_s:.1f}s"
        )
