"""``IssuerAccountWorkflow``: register an issuer's ACME account and keep saying if it can't.

One workflow per Issuer/ClusterIssuer. It registers (or finds) the account; while the CA
is unreachable or refuses, it says why in the Ready condition and tries again with
back-off (5 s doubling to 5 min), so the issuer recovers by itself when the server comes
back; a ``rateLimited`` answer waits exactly the CA's Retry-After instead. A spec change
(the ``update`` signal) starts over at once with the new settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

from acmeflow.contracts.activities import ActivityName
from acmeflow.contracts.issuer import IssuerConfig
from acmeflow.contracts.progress import (
    ConditionReason,
    ConditionStatus,
    IssuerStatus,
    IssuerUpdate,
)
from acmeflow.workflows.activity_steps import Step, execute
from acmeflow.workflows.order import RateLimit, rate_limited_message
from acmeflow.workflows.retry_policies import ACCOUNT_REGISTRATION
from acmeflow.workflows.snapshot_publisher import SnapshotPublisher

FIRST_RETRY = timedelta(seconds=5)
MAX_RETRY = timedelta(minutes=5)
ATTEMPTS_PER_RUN = 50


@dataclass
class IssuerAccountInput:
    kind: str
    namespace: str
    name: str
    uid: str
    generation: int
    issuer: IssuerConfig
    observer_task_queue: str = ""


@workflow.defn
class IssuerAccountWorkflow:
    @workflow.init
    def __init__(self, start: IssuerAccountInput) -> None:
        self._input = start
        self._status = IssuerStatus()
        self._updated = False
        self._ca_asked: timedelta | None = None
        """The wait a rate-limited registration was told to keep, if it was."""
        self._publisher = SnapshotPublisher(
            self._status, ActivityName.PUBLISH_ISSUER_STATUS, to=start.observer_task_queue
        )

    @workflow.signal
    def update(self, changed: IssuerAccountInput) -> None:
        if changed.generation >= self._input.generation:
            self._input = changed
            self._updated = True

    @workflow.query
    def status(self) -> IssuerStatus:
        return self._status

    @workflow.run
    async def run(self, start: IssuerAccountInput) -> None:
        self._publisher.start(self._update)
        delay = FIRST_RETRY
        for _ in range(ATTEMPTS_PER_RUN):
            self._updated = False
            if await self._register():
                delay = FIRST_RETRY
                await workflow.wait_condition(lambda: self._updated)
                continue
            try:
                await workflow.wait_condition(
                    lambda: self._updated, timeout=self._ca_asked or delay
                )
                delay = FIRST_RETRY
            except TimeoutError:
                if self._ca_asked is None:
                    delay = min(delay * 2, MAX_RETRY)
        await self._publisher.stop()
        workflow.continue_as_new(self._input)

    async def _register(self) -> bool:
        """One registration attempt; the Ready condition says how it went."""
        current = self._input
        self._ca_asked = None
        try:
            uri = await execute(
                Step(
                    ActivityName.ENSURE_ACCOUNT,
                    f"register ACME account at {current.issuer.server}",
                    ACCOUNT_REGISTRATION,
                    str,
                ),
                current.issuer,
            )
        except ActivityError as error:
            message = getattr(error.cause, "message", None) or str(error)
            limit = RateLimit.behind(error)
            if limit is not None:
                self._ca_asked = limit.wait
                message = rate_limited_message(workflow.now() + limit.wait, limit.detail)
            await self._set_ready(
                ConditionStatus.FALSE,
                ConditionReason.ACCOUNT_REGISTRATION_FAILED,
                f"Failed to register ACME account: {message}",
            )
            return False
        self._status.account_uri = uri
        self._status.email = current.issuer.email
        await self._set_ready(
            ConditionStatus.TRUE,
            ConditionReason.ACCOUNT_REGISTERED,
            "The ACME account was registered with the ACME server",
        )
        return True

    async def _set_ready(
        self, ready: ConditionStatus, reason: ConditionReason, message: str
    ) -> None:
        """Each Ready change reaches the bridge before the next attempt (within bounds)."""
        self._status.ready, self._status.reason, self._status.message = ready, reason, message
        self._status.observed_generation = self._input.generation
        workflow.set_current_details(f"**Ready={ready}** ({reason}): {message}")
        self._publisher.changed()
        await self._publisher.flush()

    def _update(self, status: IssuerStatus) -> IssuerUpdate:
        current = self._input
        return IssuerUpdate(
            kind=current.kind,
            namespace=current.namespace,
            name=current.name,
            uid=current.uid,
            status=status,
        )
