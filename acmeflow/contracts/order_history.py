"""What pruning a Certificate's old Orders (``revisionHistoryLimit``) takes and gives back."""

from __future__ import annotations

from dataclasses import dataclass, field

from acmeflow.contracts.certificate import CertificateRef


@dataclass(frozen=True)
class PruneOrdersRequest:
    certificate: CertificateRef
    keep: int
    """How many of the newest Orders (by revision) stay."""
    current_order: str
    """The Order of the issuance that just ended: never deleted, whatever its revision."""


@dataclass(frozen=True)
class PrunedOrders:
    deleted: list[str] = field(default_factory=list)
    """Names of the Orders deleted (their Challenges go with them: the Order owns them)."""
