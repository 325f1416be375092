"""``CertificateWorkflow``: keep one Certificate's Secret valid, for as long as it exists.

Each round: look at the TLS Secret; if it is current, sleep on a durable timer until the
renewal time (2/3 of the lifetime, or ``renewBefore``); otherwise prepare a key (kept in
a Secret), create the Order resource and run its ``OrderWorkflow`` as a child, then
write the Secret. A failed round backs off 1h, 2h, 4h ... 32h; a spec change (the
``update`` signal from the bridge) wakes the workflow at once and bypasses the back-off.
Each round ends with continue-as-new, so the history stays short however long it lives.
"""

from __future__ import annotations

import asyncio
import copy
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ChildWorkflowError
from temporalio.workflow import ParentClosePolicy

from acmeflow.contracts.activities import ActivityName
from acmeflow.contracts.progress import CertificateStatus, CertificateUpdate, OrderEvent
from acmeflow.workflows.order import OrderInput, OrderResult, OrderWorkflow
from acmeflow.workflows.resource_ids import UID_MEMO, order_workflow_id

with workflow.unsafe.imports_passed_through():
    from acmeflow.activities.certificate_steps import CertificateActivities
    from acmeflow.contracts.certificate import (
        CertificateRef,
        KeyRequest,
        OrderResourceRequest,
        PreparedKey,
        SecretInspection,
        StoreRequest,
    )
    from acmeflow.contracts.issuer import IssuerConfig
    from acmeflow.contracts.names import RequestedNames

FIRST_BACKOFF = timedelta(hours=1)
MAX_BACKOFF = timedelta(hours=32)
_STEP_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=60),
    non_retryable_error_types=["BadRequest"],
)
_STEP_TIMEOUT = timedelta(minutes=10)


@dataclass
class CertificateSpecInput:
    """The Certificate's spec as the workflow needs it; ``generation`` orders updates."""

    secret_name: str
    names: RequestedNames
    issuer_ref: dict[str, str]
    generation: int = 0
    duration: str = ""
    duration_s: float = 90 * 86400
    renew_before_s: float = 0
    key_algorithm: str = "RSA"
    key_size: int = 0
    rotation_policy: str = "Always"
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class CertificateInput:
    namespace: str
    name: str
    uid: str
    spec: CertificateSpecInput
    issuer: IssuerConfig
    observer_task_queue: str = ""
    carried: CertificateStatus | None = None
    """Status carried across continue-as-new."""


def renewal_time(not_before: datetime, not_after: datetime, renew_before_s: float) -> datetime:
    """``renewBefore`` ahead of expiry when set and shorter than the lifetime, else at 2/3."""
    lifetime = not_after - not_before
    if 0 < renew_before_s < lifetime.total_seconds():
        return not_after - timedelta(seconds=renew_before_s)
    return not_before + lifetime * 2 / 3


def backoff(failures: int) -> timedelta:
    doubled: timedelta = FIRST_BACKOFF * 2 ** max(0, failures - 1)
    return min(doubled, MAX_BACKOFF)


@workflow.defn
class CertificateWorkflow:
    def __init__(self) -> None:
        self._input: CertificateInput | None = None
        self._status = CertificateStatus()
        self._updated = False
        self._published = 0
        self._closing = False

    @workflow.signal
    def update(self, changed: CertificateInput) -> None:
        """The bridge saw a new spec or issuer; the newest generation wins."""
        if self._input is None or changed.spec.generation >= self._input.spec.generation:
            self._input = changed
            self._updated = True

    @workflow.query
    def status(self) -> CertificateStatus:
        return self._status

    @workflow.run
    async def run(self, start: CertificateInput) -> None:
        if self._input is None or start.spec.generation > self._input.spec.generation:
            self._input = start
        if start.carried is not None:
            self._status = start.carried
            self._status.events = []
        publisher = asyncio.create_task(self._publish_changes())
        # Not `finally`: a run a worker lets go of (its sleep is the usual place) is closed
        # with GeneratorExit, when nothing may be scheduled; it resumes from history.
        try:
            await self._round()
        except _RoundFailed:
            pass  # recorded as a failed attempt; the next round backs off
        except asyncio.CancelledError:
            await self._stop_publishing(publisher)
            raise
        await self._stop_publishing(publisher)
        current = self._input
        workflow.continue_as_new(
            CertificateInput(
                namespace=current.namespace,
                name=current.name,
                uid=current.uid,
                spec=current.spec,
                issuer=current.issuer,
                observer_task_queue=current.observer_task_queue,
                carried=self._status,
            )
        )

    async def _round(self) -> None:
        """One look at the Secret, then either a wait or an issuance attempt."""
        assert self._input is not None
        self._updated = False
        spec = self._input.spec
        inspection: SecretInspection = await self._step(
            CertificateActivities.inspect_certificate_secret,
            self._key_request(),
            "inspect TLS Secret",
        )
        self._status.observed_generation = spec.generation
        if inspection.conflict:
            self._set_ready("False", "SecretConflict", inspection.conflict)
            self._event("Warning", "SecretConflict", inspection.conflict)
            await workflow.wait_condition(lambda: self._updated)
            return
        if inspection.up_to_date:
            await self._wait_until_renewal(inspection)
            return
        if self._status.failed_issuance_attempts and not await self._backed_off():
            return
        await self._issue(inspection.reason)

    async def _wait_until_renewal(self, inspection: SecretInspection) -> None:
        assert self._input is not None
        renew_at = self._record_validity(inspection)
        wait = renew_at - workflow.now()
        if wait.total_seconds() <= 0:
            await self._issue(
                f"Renewing certificate as renewal was scheduled at {self._status.renewal_time}"
            )
            return
        workflow.set_current_details(f"**Ready**: renews at {self._status.renewal_time}")
        try:
            await workflow.wait_condition(lambda: self._updated, timeout=wait)
        except TimeoutError:
            await self._issue(
                f"Renewing certificate as renewal was scheduled at {self._status.renewal_time}"
            )

    def _record_validity(self, facts: SecretInspection) -> datetime:
        """Note the certificate's lifetime and renewal time; it is Ready until then."""
        assert self._input is not None
        renew_at = renewal_time(
            datetime.fromisoformat(facts.not_before),
            datetime.fromisoformat(facts.not_after),
            self._input.spec.renew_before_s,
        )
        self._status.not_before, self._status.not_after = facts.not_before, facts.not_after
        self._status.renewal_time = renew_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        self._set_ready("True", "Ready", "Certificate is up to date and has not expired")
        return renew_at

    async def _backed_off(self) -> bool:
        """Wait out the back-off after a failure; False if a spec change cut it short."""
        delay = backoff(self._status.failed_issuance_attempts)
        failed_at = datetime.fromisoformat(self._status.last_failure_time)
        remaining = failed_at + delay - workflow.now()
        if remaining.total_seconds() <= 0:
            return True
        workflow.set_current_details(
            f"**Backing off** after {self._status.failed_issuance_attempts} "
            f"failed attempt(s) until {failed_at + delay}"
        )
        try:
            await workflow.wait_condition(lambda: self._updated, timeout=remaining)
        except TimeoutError:
            return True
        self._status.failed_issuance_attempts = 0
        return False

    async def _issue(self, why: str) -> None:
        assert self._input is not None
        current = self._input
        ref = CertificateRef(current.namespace, current.name, current.uid)
        self._set_issuing(True, "Issuing", why)
        key: PreparedKey = await self._step(
            CertificateActivities.prepare_private_key, self._key_request(), "prepare private key"
        )
        self._status.next_private_key_secret_name = key.key_secret
        if key.generated:
            self._event("Normal", "Generated", "Generated new private key")
        order = await self._step(
            CertificateActivities.create_order_resource,
            OrderResourceRequest(
                certificate=ref,
                csr_pem=key.csr_pem,
                names=current.spec.names,
                issuer_ref=current.spec.issuer_ref,
                revision=self._status.revision + 1,
                duration=current.spec.duration,
                labels=current.spec.labels,
            ),
            "create Order resource",
        )
        self._event("Normal", "OrderCreated", f'Created Order resource "{order.name}"')
        try:
            result: OrderResult = await workflow.execute_child_workflow(
                OrderWorkflow.run,
                OrderInput(
                    order_name=order.name,
                    namespace=current.namespace,
                    issuer=current.issuer,
                    request=key.csr_pem,
                    names=current.spec.names,
                    certificate_name=current.name,
                    labels=current.spec.labels,
                    observer_task_queue=current.observer_task_queue,
                    resource_uid=order.uid,
                ),
                id=order_workflow_id(current.namespace, order.name),
                memo={UID_MEMO: order.uid},
                parent_close_policy=ParentClosePolicy.REQUEST_CANCEL,
                static_summary=f"ACME order {order.name} for Certificate {current.name}",
            )
        except ChildWorkflowError as failure:
            self._failed(
                f"The certificate request has failed to complete and will be retried: "
                f"{getattr(failure.cause, 'message', None) or failure}"
            )
            return
        stored: SecretInspection = await self._step(
            CertificateActivities.store_certificate,
            StoreRequest(
                certificate=ref,
                secret_name=current.spec.secret_name,
                key_secret=key.key_secret,
                chain_pem=result.certificate,
                issuer_name=current.issuer.name,
            ),
            "store certificate",
        )
        self._status.revision += 1
        self._status.failed_issuance_attempts = 0
        self._status.last_failure_time = ""
        self._status.next_private_key_secret_name = ""
        self._set_issuing(False, "", "")
        self._event("Normal", "Issuing", "The certificate has been successfully issued")
        self._record_validity(stored)

    def _failed(self, message: str) -> None:
        self._status.failed_issuance_attempts += 1
        self._status.last_failure_time = workflow.now().strftime("%Y-%m-%dT%H:%M:%SZ")
        self._set_issuing(False, "Failed", message)
        if self._status.ready != "True":
            self._set_ready("False", "Failed", message)
        self._event("Warning", "Failed", message)

    async def _step(self, activity: Any, arg: Any, summary: str) -> Any:
        try:
            return await workflow.execute_activity_method(
                activity,
                arg,
                start_to_close_timeout=timedelta(seconds=60),
                schedule_to_close_timeout=_STEP_TIMEOUT,
                retry_policy=_STEP_RETRY,
                summary=summary,
            )
        except ActivityError as error:
            message = getattr(error.cause, "message", None) or str(error)
            self._failed(f"{summary}: {message}")
            raise _RoundFailed() from error

    def _key_request(self) -> KeyRequest:
        assert self._input is not None
        current = self._input
        return KeyRequest(
            certificate=CertificateRef(current.namespace, current.name, current.uid),
            secret_name=current.spec.secret_name,
            names=current.spec.names,
            algorithm=current.spec.key_algorithm,
            size=current.spec.key_size,
            rotation_policy=current.spec.rotation_policy,
        )

    # -- status ------------------------------------------------------------------------

    def _changed(self) -> None:
        self._status.version += 1

    def _set_ready(self, status: str, reason: str, message: str) -> None:
        self._status.ready, self._status.ready_reason = status, reason
        self._status.ready_message = message
        workflow.set_current_details(f"**Ready={status}** ({reason}): {message}")
        self._changed()

    def _set_issuing(self, issuing: bool, reason: str, message: str) -> None:
        self._status.issuing = issuing
        self._status.issuing_reason, self._status.issuing_message = reason, message
        self._changed()

    def _event(self, event_type: str, reason: str, message: str) -> None:
        assert self._input is not None
        self._status.events.append(
            OrderEvent(
                seq=len(self._status.events),
                at=workflow.now().isoformat(),
                kind="Certificate",
                object_name=self._input.name,
                type=event_type,
                reason=reason,
                message=message,
            )
        )
        self._changed()

    async def _publish_changes(self) -> None:
        assert self._input is not None
        if not self._input.observer_task_queue:
            return
        while True:
            await workflow.wait_condition(
                lambda: self._status.version > self._published or self._closing
            )
            if self._status.version <= self._published:
                return
            version = self._status.version
            assert self._input is not None
            update = CertificateUpdate(
                namespace=self._input.namespace,
                name=self._input.name,
                uid=self._input.uid,
                status=copy.deepcopy(self._status),
            )
            await workflow.execute_activity(
                ActivityName.PUBLISH_CERTIFICATE_PROGRESS,
                update,
                task_queue=self._input.observer_task_queue,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=RetryPolicy(
                    initial_interval=timedelta(milliseconds=500),
                    maximum_interval=timedelta(seconds=30),
                ),
                summary=f"publish certificate status v{version}",
            )
            self._published = version

    async def _stop_publishing(self, publisher: asyncio.Task[None]) -> None:
        """The bridge sees the final snapshot of this round before it ends."""
        self._closing = True
        await self._flush()
        await publisher

    async def _flush(self) -> None:
        assert self._input is not None
        if self._input.observer_task_queue:
            await workflow.wait_condition(lambda: self._published >= self._status.version)


class _RoundFailed(Exception):
    """A step failed for good; the round ends and the next one backs off."""
