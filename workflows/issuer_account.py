"""``IssuerAccountWorkflow``: register an issuer's ACME account and keep saying if it can't.

One workflow per Issuer/ClusterIssuer. It registers (or finds) the account; while the CA
is unreachable or refuses, it says why in the Ready condition and tries again with
back-off, so the issuer recovers by itself when the server comes back. A spec change
(the ``update`` signal) starts over with the new settings.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

from acmeflow.contracts.activities import ActivityName
from acmeflow.contracts.progress import IssuerStatus, IssuerUpdate

with workflow.unsafe.imports_passed_through():
    from acmeflow.activities.acme_order import AcmeOrderActivities
    from acmeflow.contracts.errors import NON_RETRYABLE_TYPES
    from acmeflow.contracts.issuer import IssuerConfig

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
    def __init__(self) -> None:
        self._input: IssuerAccountInput | None = None
        self._status = IssuerStatus()
        self._updated = False

    @workflow.signal
    def update(self, changed: IssuerAccountInput) -> None:
        if self._input is None or changed.generation >= self._input.generation:
            self._input = changed
            self._updated = True

    @workflow.query
    def status(self) -> IssuerStatus:
        return self._status

    @workflow.run
    async def run(self, start: IssuerAccountInput) -> None:
        if self._input is None or start.generation > self._input.generation:
            self._input = start
        delay = FIRST_RETRY
        for _ in range(ATTEMPTS_PER_RUN):
            self._updated = False
            current = self._input
            try:
                uri: str = await workflow.execute_activity_method(
                    AcmeOrderActivities.ensure_account,
                    current.issuer,
                    start_to_close_timeout=timedelta(seconds=30),
                    retry_policy=RetryPolicy(
                        maximum_attempts=3, non_retryable_error_types=list(NON_RETRYABLE_TYPES)
                    ),
                    summary=f"register ACME account at {current.issuer.server}",
                )
            except ActivityError as error:
                message = getattr(error.cause, "message", None) or str(error)
                await self._publish(
                    "False", "ErrRegisterACMEAccount", f"Failed to register ACME account: {message}"
                )
                try:
                    await workflow.wait_condition(lambda: self._updated, timeout=delay)
                    delay = FIRST_RETRY
                except TimeoutError:
                    delay = min(delay * 2, MAX_RETRY)
                continue
            self._status.account_uri = uri
            self._status.email = current.issuer.email
            await self._publish(
                "True",
                "ACMEAccountRegistered",
                "The ACME account was registered with the ACME server",
            )
            await workflow.wait_condition(lambda: self._updated)
        assert self._input is not None
        workflow.continue_as_new(self._input)

    async def _publish(self, ready: str, reason: str, message: str) -> None:
        assert self._input is not None
        self._status.ready, self._status.reason, self._status.message = ready, reason, message
        self._status.observed_generation = self._input.generation
        self._status.version += 1
        workflow.set_current_details(f"**Ready={ready}** ({reason}): {message}")
        if not self._input.observer_task_queue:
            return
        await workflow.execute_activity(
            ActivityName.PUBLISH_ISSUER_STATUS,
            IssuerUpdate(
                kind=self._input.kind,
                namespace=self._input.namespace,
                name=self._input.name,
                uid=self._input.uid,
                status=copy.deepcopy(self._status),
            ),
            task_queue=self._input.observer_task_queue,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=30)),
            summary=f"publish issuer status: {reason}",
        )
