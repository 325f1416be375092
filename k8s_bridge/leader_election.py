"""Leader election on a ``coordination.k8s.io`` Lease, with client-go's semantics.

Several bridge replicas may run; only the one holding the Lease reconciles and mirrors, so
work is not done twice and a replica is always warm to take over. The Lease spec is
client-go's record: ``holderIdentity``, ``leaseDurationSeconds``, ``acquireTime``,
``renewTime``, ``leaseTransitions``.

- A replica takes the Lease when it is free (no holder), already its own, or expired: not
  changed for ``leaseDurationSeconds`` by the observer's own monotonic clock since it last
  saw the record change (so clocks of different nodes never need to agree).
- Writes are optimistic: an update carries the ``resourceVersion`` read; a 409 means
  someone else wrote first, and the next round reads again.
- The leader renews every retry period; when no renewal succeeded for the renew deadline,
  or the Lease names another holder, it stops leading (:class:`LeadershipLost`) before the
  others may take over (the renew deadline is shorter than the lease duration).
- On shutdown the leader clears ``holderIdentity`` (client-go's ReleaseOnCancel), so a
  standby takes over within one retry period instead of a lease duration.

Acquire attempts are not jittered (client-go jitters by 1.2): a Deployment's few replicas
do not stampede, and a takeover then stays within lease duration + retry period.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

log = logging.getLogger(__name__)

SOLE_REPLICA_ROLE = "leader (no election: one replica)"


class LeadershipLost(Exception):
    """The Lease could not be renewed in time or was taken: this replica must stop now."""


class Leadership(Protocol):
    """What the bridge needs of an election: wait to lead, lead, hand over."""

    def role(self) -> str:
        """This replica's role, for /readyz."""
        ...

    async def acquire(self, stop: asyncio.Event) -> bool:
        """Wait until this replica leads (True) or ``stop`` is set (False)."""
        ...

    async def lead(self, stop: asyncio.Event) -> None:
        """Keep leading until ``stop`` is set; raises :class:`LeadershipLost`."""
        ...

    async def release(self) -> None:
        """Hand the lead over at once (after the work stopped)."""
        ...


class SoleReplica:
    """Without ``--leader-elect``: this replica leads from the start (dev up, tests)."""

    def role(self) -> str:
        return SOLE_REPLICA_ROLE

    async def acquire(self, stop: asyncio.Event) -> bool:
        return True

    async def lead(self, stop: asyncio.Event) -> None:
        await stop.wait()

    async def release(self) -> None:
        pass


@dataclass(frozen=True)
class LeaseTimings:
    """client-go's three durations; its defaults are 15 s, 10 s and 2 s."""

    lease_duration_s: int
    """How long others wait after the last renewal they saw before taking the Lease."""
    renew_deadline_s: float
    """How long the leader keeps trying to renew before it stops leading."""
    retry_period_s: float
    """Pause between attempts to acquire or renew."""

    def __post_init__(self) -> None:
        if not self.lease_duration_s > self.renew_deadline_s > self.retry_period_s > 0:
            raise ValueError(
                "leader election needs lease duration > renew deadline > retry period > 0, got "
                f"{self.lease_duration_s}, {self.renew_deadline_s}, {self.retry_period_s}"
            )


def new_identity(hostname: str = "") -> str:
    """``<pod name>_<random>``: unique even when a restarted pod keeps its name."""
    return f"{hostname or socket.gethostname()}_{uuid.uuid4().hex[:10]}"


def micro_time(moment: datetime) -> datetime:
    """A MicroTime the API server can parse once the client wrote it: the client writes
    ``isoformat()``, which drops the fraction when the microseconds are zero, and the
    server's RFC3339Micro layout insists on six digits; so such a moment moves by 1 µs."""
    moment = moment.astimezone(UTC)
    return moment.replace(microsecond=1) if moment.microsecond == 0 else moment


def claimed(
    current: client.V1LeaseSpec | None, identity: str, lease_duration_s: int, now: datetime
) -> client.V1LeaseSpec:
    """The spec that makes ``identity`` the holder: a renewal keeps the acquire time and the
    transitions, a takeover counts one more transition (a new Lease starts at 0)."""
    stamp = micro_time(now)
    if current is None:
        return client.V1LeaseSpec(
            holder_identity=identity,
            lease_duration_seconds=lease_duration_s,
            acquire_time=stamp,
            renew_time=stamp,
            lease_transitions=0,
        )
    renewing = current.holder_identity == identity
    return client.V1LeaseSpec(
        holder_identity=identity,
        lease_duration_seconds=lease_duration_s,
        acquire_time=micro_time(current.acquire_time or now) if renewing else stamp,
        renew_time=stamp,
        lease_transitions=(current.lease_transitions or 0) + (0 if renewing else 1),
    )


def released(current: client.V1LeaseSpec, now: datetime) -> client.V1LeaseSpec:
    """No holder, as client-go leaves a Lease it releases (duration 1 s, transitions kept)."""
    stamp = micro_time(now)
    return client.V1LeaseSpec(
        holder_identity=None,
        lease_duration_seconds=1,
        acquire_time=stamp,
        renew_time=stamp,
        lease_transitions=current.lease_transitions or 0,
    )


def _record(spec: client.V1LeaseSpec | None) -> tuple[object, ...]:
    if spec is None:
        return ()
    return (
        spec.holder_identity,
        spec.lease_duration_seconds,
        spec.acquire_time,
        spec.renew_time,
        spec.lease_transitions,
    )


class LeaseObservation:
    """The Lease record as this replica last saw it, and when by its own clock (client-go's
    ``observedRecord`` and ``observedTime``)."""

    def __init__(self) -> None:
        self.spec: client.V1LeaseSpec | None = None
        self.seen_at = 0.0

    def observe(self, spec: client.V1LeaseSpec | None, at: float) -> bool:
        """Remember ``spec``; True when it differs from the last one (``seen_at`` moves)."""
        if self.spec is not None and _record(spec) == _record(self.spec):
            return False
        self.spec, self.seen_at = spec, at
        return True

    @property
    def holder(self) -> str:
        return str(self.spec.holder_identity or "") if self.spec is not None else ""

    def takeable_by(self, identity: str, at: float) -> bool:
        """Free, ``identity``'s own, or not renewed for its duration since we saw it change."""
        if not self.holder or self.holder == identity or self.spec is None:
            return True
        return at >= self.seen_at + float(self.spec.lease_duration_seconds or 0)


_API_ERRORS = (ApiException, urllib3.exceptions.HTTPError, OSError)


class LeaseElection:
    """This replica's part in the election on the Lease ``namespace/name``."""

    def __init__(
        self,
        coordination: client.CoordinationV1Api,
        *,
        namespace: str,
        name: str,
        identity: str,
        timings: LeaseTimings,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._api = coordination
        self._namespace = namespace
        self._name = name
        self.identity = identity
        self._timings = timings
        self._clock = clock
        self._observed = LeaseObservation()
        self._renewed_at = 0.0
        self._leading = False
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lease")
        """Its own thread, so busy reconcilers never delay a renewal."""

    @property
    def lease(self) -> str:
        return f"{self._namespace}/{self._name}"

    def role(self) -> str:
        if self._leading:
            return f"leader ({self.identity})"
        return f"standby (leader: {self._observed.holder or 'none'})"

    async def acquire(self, stop: asyncio.Event) -> bool:
        log.info("leader election on Lease %s as %s: waiting to lead", self.lease, self.identity)
        while not stop.is_set():
            if await self._attempt_in_time(self._timings.renew_deadline_s):
                self._leading, self._renewed_at = True, self._clock()
                log.info(
                    "acquired Lease %s as %s (transitions: %s)",
                    self.lease,
                    self.identity,
                    self._observed.spec.lease_transitions if self._observed.spec else 0,
                )
                return True
            if await _stopped_within(stop, self._timings.retry_period_s):
                break
        return False

    async def lead(self, stop: asyncio.Event) -> None:
        while not await _stopped_within(stop, self._timings.retry_period_s):
            remaining = self._renewed_at + self._timings.renew_deadline_s - self._clock()
            if remaining > 0 and await self._attempt_in_time(remaining):
                self._renewed_at = self._clock()
                continue
            taken = self._observed.holder not in ("", self.identity)
            if taken or self._clock() - self._renewed_at >= self._timings.renew_deadline_s:
                self._leading = False
                why = f"held by {self._observed.holder}" if taken else "renew deadline passed"
                log.error(
                    "lost Lease %s as %s (%s): stopping; the Deployment restarts this replica",
                    self.lease,
                    self.identity,
                    why,
                )
                raise LeadershipLost(f"lost Lease {self.lease}: {why}")

    async def release(self) -> None:
        if not self._leading:
            return
        self._leading = False
        try:
            done = await asyncio.get_running_loop().run_in_executor(self._executor, self._release)
        except _API_ERRORS as error:
            log.warning("could not release Lease %s: %s; it expires instead", self.lease, error)
            return
        if done:
            log.info("released Lease %s as %s", self.lease, self.identity)

    async def _attempt_in_time(self, timeout_s: float) -> bool:
        """One acquire-or-renew round, given up (False) after ``timeout_s``."""
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout_s):
                return await loop.run_in_executor(self._executor, self._try_acquire_or_renew)
        except TimeoutError:
            log.warning("Lease %s: no answer within %.1fs", self.lease, timeout_s)
            return False

    def _try_acquire_or_renew(self) -> bool:
        timeout = self._timings.renew_deadline_s
        try:
            lease = self._api.read_namespaced_lease(
                self._name, self._namespace, _request_timeout=timeout
            )
        except ApiException as error:
            if error.status != 404:
                log.warning("Lease %s: reading failed: %s", self.lease, error.reason)
                return False
            return self._create(timeout)
        except _API_ERRORS as error:
            log.warning("Lease %s: reading failed: %s", self.lease, error)
            return False
        self._see(lease.spec)
        if not self._observed.takeable_by(self.identity, self._clock()):
            return False
        lease.spec = claimed(
            lease.spec, self.identity, self._timings.lease_duration_s, datetime.now(UTC)
        )
        # metadata.resourceVersion as read: a 409 if someone wrote since
        return self._written(
            "writing",
            lambda: self._api.replace_namespaced_lease(
                self._name, self._namespace, lease, _request_timeout=timeout
            ),
        )

    def _create(self, timeout: float) -> bool:
        lease = client.V1Lease(
            metadata=client.V1ObjectMeta(name=self._name, namespace=self._namespace),
            spec=claimed(None, self.identity, self._timings.lease_duration_s, datetime.now(UTC)),
        )
        return self._written(
            "creating",
            lambda: self._api.create_namespaced_lease(
                self._namespace, lease, _request_timeout=timeout
            ),
        )

    def _written(self, what: str, write: Callable[[], client.V1Lease]) -> bool:
        """One write of the Lease; False when it failed (a 409: someone wrote first)."""
        try:
            lease = write()
        except ApiException as error:
            if error.status != 409:
                log.warning("Lease %s: %s failed: %s", self.lease, what, error.reason)
            return False
        except _API_ERRORS as error:
            log.warning("Lease %s: %s failed: %s", self.lease, what, error)
            return False
        self._see(lease.spec)
        return True

    def _see(self, spec: client.V1LeaseSpec | None) -> None:
        before = self._observed.holder
        self._observed.observe(spec, self._clock())
        holder = self._observed.holder
        if holder != before and holder not in ("", self.identity):
            log.info("Lease %s is held by %s; %s stands by", self.lease, holder, self.identity)

    def _release(self) -> bool:
        timeout = self._timings.renew_deadline_s
        lease = self._api.read_namespaced_lease(
            self._name, self._namespace, _request_timeout=timeout
        )
        if lease.spec is None or lease.spec.holder_identity != self.identity:
            return False
        lease.spec = released(lease.spec, datetime.now(UTC))
        written = self._api.replace_namespaced_lease(
            self._name, self._namespace, lease, _request_timeout=timeout
        )
        self._observed.observe(written.spec, self._clock())
        return True


async def _stopped_within(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep ``seconds`` unless ``stop`` is set first; True if it is set."""
    try:
        async with asyncio.timeout(seconds):
            await stop.wait()
    except TimeoutError:
        return False
    return True
