"""One challenge to present, check and clean up, and a self-check's verdict."""

from __future__ import annotations

from dataclasses import dataclass

from acmeflow.contracts.issuer import SolverConfig
from acmeflow.contracts.states import ChallengeType


@dataclass(frozen=True)
class ChallengeSpec:
    """Everything needed to present, check and clean up one challenge on any worker."""

    name: str
    namespace: str
    order_name: str
    dns_name: str
    wildcard: bool
    type: ChallengeType
    token: str
    key: str
    url: str
    authorization_url: str
    solver: SolverConfig

    @property
    def shown_name(self) -> str:
        """The identifier as a person wrote it: ``*.example.com`` for a wildcard."""
        return f"*.{self.dns_name}" if self.wildcard else self.dns_name


@dataclass(frozen=True)
class SelfCheckResult:
    """Whether the world already serves the challenge; ``reason`` says why not."""

    passed: bool
    reason: str = ""
