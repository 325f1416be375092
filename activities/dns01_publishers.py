"""The DNS-01 providers behind one interface: add or delete one TXT value at a resolved name.

Finding the zone (by SOA) and following a ``_acme-challenge`` CNAME happen before a
provider is called (``acmeflow.activities.dns_zones``), so every provider gets the same
answer to "which record, in which zone" and none of them assumes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from acmeflow.activities.credential_copies import CopyOwner
from acmeflow.activities.errors import bad_request
from acmeflow.contracts.challenge import ChallengeSpec


@dataclass(frozen=True)
class TxtTarget:
    """Where one challenge's value goes."""

    fqdn: str
    """Absolute name with its trailing dot: ``_acme-challenge.<name>.`` or where it points."""
    zone: str
    """The zone holding ``fqdn``, absolute with its trailing dot, found by SOA."""
    value: str


class TxtPublisher(Protocol):
    """One provider. Both calls are idempotent: a value present twice, or deleted when it is
    already gone, changes nothing. A wildcard and its apex share ``fqdn`` with two values,
    so adding keeps other values and deleting removes only ``target.value``."""

    def add_txt(self, spec: ChallengeSpec, target: TxtTarget, *, copy: CopyOwner) -> None: ...

    def delete_txt(self, spec: ChallengeSpec, target: TxtTarget, *, copy: CopyOwner) -> None: ...


@dataclass(frozen=True)
class Dns01Publishers:
    """The providers this worker can drive; one that is None is refused with a reason."""

    rfc2136: TxtPublisher | None = None
    webhook: TxtPublisher | None = None
    route53: TxtPublisher | None = None
    lexicon: TxtPublisher | None = None

    def for_challenge(self, spec: ChallengeSpec) -> TxtPublisher:
        solver = spec.solver
        chosen: TxtPublisher | None
        if solver.dns01 is not None:
            chosen = self.rfc2136
        elif solver.webhook is not None:
            chosen = self.webhook
        elif solver.route53 is not None:
            chosen = self.route53
        elif solver.lexicon is not None:
            chosen = self.lexicon
        else:
            raise bad_request(f"challenge {spec.name} has no DNS-01 solver")
        if chosen is None:
            raise bad_request(
                f"challenge {spec.name}: this worker has no {solver.dns01_provider} DNS-01 "
                "provider configured"
            )
        return chosen
