"""``CertificateWorkflow``: keep one Certificate's Secret valid, for as long as it exists.

Each round: look at the TLS Secret; if it is current, sleep on a durable timer until the
renewal time (from the CA's ARI window where it offers one, else 2/3 of the lifetime or
``renewBefore`` with a jitter: ``renewal_schedule``); otherwise prepare a key (kept in
a Secret), create the Order resource and run its ``OrderWorkflow`` as a child, then
write the Secret. A failed round backs off 1h, 2h, 4h ... 32h; a spec change (the
``update`` signal from the bridge) wakes the workflow at once and bypasses the back-off.
Each round ends with continue-as-new, so the history stays short however long it lives.

A user who deletes or edits the TLS Secret of a Ready certificate does not wait for the
renewal: the bridge watches acmeflow's TLS Secrets and sends ``secret_changed``, which
ends the wait, and the next round's look at the Secret decides. A Secret that is no good
any more (gone, another key, other names, garbage) makes the Certificate not Ready, with
cert-manager's reason (``DoesNotExist``, ``InvalidKeyPair``, ``SecretMismatch``,
``InvalidCertificate``...), and is reissued at once, past any back-off. A Secret the
workflow wrote itself looks good, so its own writes cost one look and nothing more.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Final, TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError, ChildWorkflowError, is_cancelled_exception
from temporalio.workflow import ParentClosePolicy

from acmeflow.contracts.activities import ActivityName
from acmeflow.contracts.certificate import (
    CertificateRef,
    KeyRequest,
    OrderResourceRef,
    OrderResourceRequest,
    PreparedKey,
    SecretInspection,
    StoreRequest,
)
from acmeflow.contracts.issuer import IssuerConfig
from acmeflow.contracts.names import RequestedNames
from acmeflow.contracts.order_history import PrunedOrders, PruneOrdersRequest
from acmeflow.contracts.progress import (
    CertificateStatus,
    CertificateUpdate,
    ConditionReason,
    ConditionStatus,
    EventReason,
    EventType,
    ObjectKind,
    OrderEvent,
)
from acmeflow.contracts.renewal_info import RenewalInfo, RenewalInfoRequest
from acmeflow.workflows.activity_steps import Step, execute
from acmeflow.workflows.order import OrderInput, OrderResult, OrderWorkflow
from acmeflow.workflows.renewal_schedule import (
    ARI_PROBLEM_RECHECK,
    RenewalPlan,
    plan_renewal,
    renew_before_seconds,
    renewal_time,
)
from acmeflow.workflows.resource_ids import UID_MEMO, order_workflow_id
from acmeflow.workflows.retry_policies import ACME_CALL, KUBERNETES_STEP
from acmeflow.workflows.snapshot_publisher import SnapshotPublisher

FIRST_BACKOFF = timedelta(hours=1)
MAX_BACKOFF = timedelta(hours=32)
_STEP_TIMEOUT: Final = timedelta(minutes=10)
_ATTEMPT_TIMEOUT: Final = timedelta(seconds=10)
"""One attempt of a step in the cluster: a few API requests, each cut off after seconds
(``REQUEST_TIMEOUT``), and at most an RSA 4096 key; a worker that dies mid-step is
noticed, and the step retried on another, after this long."""
T = TypeVar("T")


def _kubernetes_step(activity: ActivityName, description: str, returns: type[T]) -> Step[T]:
    return Step(
        activity,
        description,
        KUBERNETES_STEP,
        returns,
        timeout=_STEP_TIMEOUT,
        attempt_timeout=_ATTEMPT_TIMEOUT,
    )


INSPECT = _kubernetes_step(
    ActivityName.INSPECT_CERTIFICATE_SECRET, "inspect TLS Secret", SecretInspection
)
PREPARE_KEY = _kubernetes_step(ActivityName.PREPARE_PRIVATE_KEY, "prepare private key", PreparedKey)
CREATE_ORDER_RESOURCE = _kubernetes_step(
    ActivityName.CREATE_ORDER_RESOURCE, "create Order resource", OrderResourceRef
)
STORE = _kubernetes_step(ActivityName.STORE_CERTIFICATE, "store certificate", SecretInspection)
FETCH_RENEWAL_INFO = Step(
    ActivityName.FETCH_RENEWAL_INFO,
    "ask the CA when to renew (ARI)",
    ACME_CALL,
    RenewalInfo,
    timeout=timedelta(minutes=2),
    attempt_timeout=timedelta(seconds=30),
)
"""Short over all: the activity answers any failure itself, so only a lost worker retries."""
RENEWAL_SCHEDULE_PATCH: Final = "renewal-schedule"
"""ARI, the jitter and the renewal rule in status (histories from before renew at 2/3)."""
REFRESH_SECRET = replace(
    _kubernetes_step(ActivityName.REFRESH_TLS_SECRET, "refresh TLS Secret metadata", bool),
    timeout=timedelta(minutes=1),
)
"""Short: a Secret whose labels cannot be written now gets them at the next issuance."""
REFRESH_SECRET_PATCH: Final = "refresh-tls-secret"
PRUNE_ORDERS = replace(
    _kubernetes_step(ActivityName.PRUNE_ORDERS, "prune old Orders", PrunedOrders),
    timeout=timedelta(minutes=1),
)
"""Short: Orders left now are pruned after the next issuance."""
PRUNE_ORDERS_PATCH: Final = "prune-orders"
NEW_SPEC_AFTER_FAILURE_PATCH: Final = "new-spec-after-failure"
"""A spec change that reached the run ending in a failure skips the back-off."""
"""revisionHistoryLimit (histories from before kept every Order)."""


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
    renew_before_percentage: int = 0
    """``renewBeforePercentage``: renew when this share of the issued lifetime is left."""
    key_algorithm: str = "RSA"
    key_size: int = 0
    rotation_policy: str = "Always"
    labels: dict[str, str] = field(default_factory=dict)
    key_encoding: str = "PKCS1"
    secret_labels: dict[str, str] = field(default_factory=dict)
    secret_annotations: dict[str, str] = field(default_factory=dict)
    """The Certificate's ``secretTemplate``."""
    additional_output_formats: list[str] = field(default_factory=list)
    revision_history_limit: int = 0
    """Orders to keep (the newest); 0 keeps all."""
    profile: str = ""
    """ACME profile to order with, in place of the issuer's."""


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
    undelivered_events: list[OrderEvent] = field(default_factory=list)
    """Events of the previous run that the observer had not received when it ended."""
    renew_requested: str = ""
    """Why a reissue was asked for (``acmeflow renew``) and not yet begun, carried over."""
    issuer_problem: str = ""
    """Why the issuer cannot be used now (``issuer_unavailable``), carried over until an
    ``update`` brings a usable issuer."""


def backoff(failures: int) -> timedelta:
    doubled: timedelta = FIRST_BACKOFF * 2 ** max(0, failures - 1)
    return min(doubled, MAX_BACKOFF)


def _carried_status(start: CertificateInput) -> CertificateStatus:
    """The status the previous run ended with; its events only where still undelivered."""
    if start.carried is None:
        return CertificateStatus()
    return replace(start.carried, events=list(start.undelivered_events))


@workflow.defn
class CertificateWorkflow:
    @workflow.init
    def __init__(self, start: CertificateInput) -> None:
        self._input = start
        self._status = _carried_status(start)
        self._updated = False
        self._secret_changed = False
        self._renew_requested = start.renew_requested
        self._issuer_problem = start.issuer_problem
        self._publisher = SnapshotPublisher(
            self._status, ActivityName.PUBLISH_CERTIFICATE_PROGRESS, to=start.observer_task_queue
        )

    @workflow.signal
    def update(self, changed: CertificateInput) -> None:
        """The bridge saw a new spec or issuer; the newest generation wins."""
        if changed.spec.generation >= self._input.spec.generation:
            self._input = changed
            self._updated = True
            self._issuer_problem = ""

    @workflow.signal
    def issuer_unavailable(self, problem: str) -> None:
        """The bridge found the issuer gone or not Ready: issue nothing until an ``update``
        brings it back (a renewal due meanwhile waits; the Secret stays as it is)."""
        self._issuer_problem = problem

    @workflow.signal
    def secret_changed(self, secret_name: str) -> None:
        """The bridge saw the TLS Secret change or go: look at it again now."""
        if secret_name == self._input.spec.secret_name:
            self._secret_changed = True

    @workflow.signal
    def renew(self, why: str) -> None:
        """Reissue now, past any renewal time or back-off (``acmeflow renew``)."""
        self._renew_requested = why or "Certificate re-issuance manually triggered"

    @workflow.query
    def status(self) -> CertificateStatus:
        return self._status

    @workflow.run
    async def run(self, start: CertificateInput) -> None:
        self._publisher.start(self._update)
        # Not `finally`: a run a worker lets go of (its sleep is the usual place) is closed
        # with GeneratorExit, when nothing may be scheduled; it resumes from history.
        try:
            await self._round()
        except _RoundFailed:
            pass  # recorded as a failed attempt; the next round backs off
        except asyncio.CancelledError:
            await self._publisher.stop()
            raise
        await self._publisher.stop()
        workflow.continue_as_new(
            replace(
                self._input,
                carried=replace(self._status, events=[]),
                undelivered_events=self._publisher.undelivered_events,
                renew_requested=self._renew_requested,
                issuer_problem=self._issuer_problem,
            )
        )

    async def _round(self) -> None:
        """One look at the Secret, then either a wait or an issuance attempt."""
        self._updated = self._secret_changed = False
        if self._issuer_problem:
            await self._wait_for_issuer()
            return
        spec = self._input.spec
        inspection = await self._step(INSPECT, self._key_request())
        # Ready under the same spec, and no good now: someone broke the Secret.
        broken = (
            self._status.ready == ConditionStatus.TRUE
            and self._status.observed_generation == spec.generation
        )
        respecified = self._status.observed_generation != spec.generation
        self._status.observed_generation = spec.generation
        if inspection.conflict:
            self._set_ready(
                ConditionStatus.FALSE, ConditionReason.SECRET_CONFLICT, inspection.conflict
            )
            self._event(EventType.WARNING, EventReason.SECRET_CONFLICT, inspection.conflict)
            await workflow.wait_condition(lambda: self._updated)
            return
        if self._renew_requested and not inspection.conflict:
            await self._issue(self._renew_requested, replaces=inspection.certificate_id)
            return
        if inspection.up_to_date:
            if workflow.patched(REFRESH_SECRET_PATCH):
                await self._refresh_secret()
            await self._wait_until_renewal(inspection)
            return
        if broken:
            self._secret_broken(inspection)
        elif self._status.failed_issuance_attempts:
            # A spec that came while the failed round ended (before the back-off began)
            # bypasses the back-off as one that comes during it does.
            if respecified and workflow.patched(NEW_SPEC_AFTER_FAILURE_PATCH):
                self._status.failed_issuance_attempts = 0
            elif not await self._backed_off():
                return
        await self._issue(inspection.reason, reason=_violation(inspection))

    async def _refresh_secret(self) -> None:
        """A good Secret gets a changed secretTemplate, encoding or output formats without
        a new certificate (as cert-manager does); a failure only waits for the next one."""
        request = self._secret_request(key_secret="", chain_pem="")
        await _best_effort(REFRESH_SECRET, request, failure="TLS Secret metadata not refreshed")

    async def _wait_for_issuer(self) -> None:
        """Not Ready, naming the issuer and why, until an ``update`` brings it back."""
        problem = self._issuer_problem
        if self._status.ready_message != problem:
            self._set_ready(ConditionStatus.FALSE, ConditionReason.ISSUER_NOT_READY, problem)
            self._event(EventType.WARNING, EventReason.ISSUER_NOT_READY, problem)
        await workflow.wait_condition(lambda: self._updated or self._issuer_problem != problem)

    def _secret_broken(self, inspection: SecretInspection) -> None:
        """Not Ready any more, saying why; the issuance that follows skips any back-off."""
        self._set_ready(ConditionStatus.FALSE, _violation(inspection), inspection.reason)
        self._event(EventType.NORMAL, EventReason.ISSUING, inspection.reason)

    async def _wait_until_renewal(self, inspection: SecretInspection) -> None:
        """Sleep until the renewal time, or until ARI is due to be asked again (the round
        then ends and the next one asks)."""
        plan = await self._renewal_plan(inspection)
        renew_at = self._record_validity(inspection, plan)
        why = f"Renewing certificate as renewal was scheduled at {self._status.renewal_time}"
        wait = renew_at - workflow.now()
        if wait.total_seconds() <= 0:
            # A renewal that failed backs off too: the old certificate still serves.
            if not self._status.failed_issuance_attempts or await self._backed_off():
                await self._issue(why, replaces=inspection.certificate_id)
            return
        recheck = plan.recheck_at if plan is not None else None
        wake = min(renew_at, recheck) if recheck is not None else renew_at
        rule = f" ({self._status.renewal_rule})" if self._status.renewal_rule else ""
        workflow.set_current_details(f"**Ready**: renews at {self._status.renewal_time}{rule}")
        try:
            await workflow.wait_condition(self._woken, timeout=wake - workflow.now())
        except TimeoutError:
            if wake < renew_at:
                return  # time to ask the CA again: the next round does
            await self._issue(why, replaces=inspection.certificate_id)

    async def _renewal_plan(self, inspection: SecretInspection) -> RenewalPlan | None:
        """ARI where the CA offers it, else the lifetime rule; None in histories from before
        (which renewed at the plain lifetime rule, and must replay so)."""
        if not workflow.patched(RENEWAL_SCHEDULE_PATCH):
            return None
        info: RenewalInfo | None = None
        if inspection.certificate_id:
            issuer = self._input.issuer
            request = RenewalInfoRequest(
                server=issuer.server,
                account_key=issuer.account_key,
                certificate_id=inspection.certificate_id,
                skip_tls_verify=issuer.skip_tls_verify,
                ca_bundle_pem=issuer.ca_bundle_pem,
            )
            try:
                info = await execute(FETCH_RENEWAL_INFO, request)
            except ActivityError as error:  # an ARI outage never blocks the lifetime rule
                if is_cancelled_exception(error):
                    raise  # the Certificate is going: not an outage
                info = RenewalInfo(
                    offered=True,
                    problem=getattr(error.cause, "message", None) or str(error),
                    retry_after_s=ARI_PROBLEM_RECHECK.total_seconds(),
                )
        return self._plan(inspection, info)

    def _plan(self, facts: SecretInspection, info: RenewalInfo | None) -> RenewalPlan:
        return plan_renewal(
            not_before=datetime.fromisoformat(facts.not_before),
            not_after=datetime.fromisoformat(facts.not_after),
            renew_before_s=self._renew_before_s(facts),
            seed=f"{self._input.uid}/{facts.certificate_id or facts.not_after}",
            info=info,
            now=workflow.now(),
        )

    def _renew_before_s(self, facts: SecretInspection) -> float:
        """``renewBefore``, or ``renewBeforePercentage`` of the lifetime actually issued."""
        return renew_before_seconds(
            not_before=datetime.fromisoformat(facts.not_before),
            not_after=datetime.fromisoformat(facts.not_after),
            renew_before_s=self._input.spec.renew_before_s,
            percentage=self._input.spec.renew_before_percentage,
        )

    def _record_validity(
        self, facts: SecretInspection, plan: RenewalPlan | None = None
    ) -> datetime:
        """Note the certificate's lifetime and renewal time; it is Ready until then.

        Without a ``plan`` (just stored: ARI is asked in the next round), the lifetime rule;
        in a history from before the renewal schedule, the plain rule without jitter.
        """
        if plan is None and workflow.patched(RENEWAL_SCHEDULE_PATCH):
            plan = self._plan(facts, None)
        if plan is None:
            renew_at = renewal_time(
                datetime.fromisoformat(facts.not_before),
                datetime.fromisoformat(facts.not_after),
                self._renew_before_s(facts),
            )
        else:
            renew_at, self._status.renewal_rule = plan.renew_at, plan.rule
        self._status.not_before, self._status.not_after = facts.not_before, facts.not_after
        self._status.renewal_time = renew_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        self._set_ready(
            ConditionStatus.TRUE,
            ConditionReason.READY,
            "Certificate is up to date and has not expired",
        )
        return renew_at

    def _woken(self) -> bool:
        """A new spec, a changed Secret, ``acmeflow renew`` or a lost issuer: stop waiting."""
        return (
            self._updated
            or self._secret_changed
            or bool(self._renew_requested)
            or bool(self._issuer_problem)
        )

    async def _backed_off(self) -> bool:
        """Wait out the back-off after a failure; False if a spec or Secret change cut it
        short (the next round looks at the Secret again)."""
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
            await workflow.wait_condition(self._woken, timeout=remaining)
        except TimeoutError:
            return True
        if self._updated:  # a new spec starts afresh; a changed Secret is looked at again
            self._status.failed_issuance_attempts = 0
        return False

    async def _issue(
        self, why: str, *, reason: ConditionReason = ConditionReason.RENEWING, replaces: str = ""
    ) -> None:
        """One issuance attempt; ``replaces`` names (for ARI) the certificate it renews.

        Issuing True says why, in cert-manager's words: ``Renewing`` when the renewal time
        came, ``ManuallyTriggered``, or what is wrong with the Secret (``DoesNotExist``,
        ``SecretMismatch``...), which Ready False says too; a Secret that is still good
        (a renewal, a manual reissue) keeps Ready as it is."""
        current = self._input
        if self._renew_requested:
            reason, why = ConditionReason.MANUALLY_TRIGGERED, self._renew_requested
            self._renew_requested = ""
        self._set_issuing(True, reason, why)
        if reason not in (ConditionReason.RENEWING, ConditionReason.MANUALLY_TRIGGERED):
            self._set_ready(ConditionStatus.FALSE, reason, why)
        key = await self._step(PREPARE_KEY, self._key_request())
        self._status.next_private_key_secret_name = key.key_secret
        if key.generated:
            self._event(EventType.NORMAL, EventReason.KEY_GENERATED, "Generated new private key")
        order = await self._step(
            CREATE_ORDER_RESOURCE,
            OrderResourceRequest(
                certificate=self._ref(),
                csr_pem=key.csr_pem,
                names=current.spec.names,
                issuer_ref=current.spec.issuer_ref,
                revision=self._status.revision + 1,
                duration=current.spec.duration,
                labels=current.spec.labels,
            ),
        )
        self._event(
            EventType.NORMAL, EventReason.ORDER_CREATED, f'Created Order resource "{order.name}"'
        )
        result = await self._run_order(order, key, replaces)
        if result is not None:
            await self._store(key, result, order=order.name)

    async def _run_order(
        self, order: OrderResourceRef, key: PreparedKey, replaces: str
    ) -> OrderResult | None:
        """The Order's workflow, as a child; None (a recorded failure) if it failed."""
        current = self._input
        issuer = current.issuer
        if current.spec.profile:
            issuer = replace(issuer, profile=current.spec.profile)
        try:
            result: OrderResult = await workflow.execute_child_workflow(
                OrderWorkflow.run,
                OrderInput(
                    order_name=order.name,
                    namespace=current.namespace,
                    issuer=issuer,
                    request=key.csr_pem,
                    names=current.spec.names,
                    certificate_name=current.name,
                    labels=current.spec.labels,
                    observer_task_queue=current.observer_task_queue,
                    resource_uid=order.uid,
                    replaces=replaces,
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
            return None
        return result

    async def _store(self, key: PreparedKey, result: OrderResult, *, order: str) -> None:
        """Write the Secret; the Certificate is Ready with a new revision, its Issuing
        condition gone (as cert-manager removes it); then Orders beyond the history limit go."""
        stored = await self._step(
            STORE, self._secret_request(key_secret=key.key_secret, chain_pem=result.certificate)
        )
        self._status.revision += 1
        self._status.failed_issuance_attempts = 0
        self._status.last_failure_time = ""
        self._status.next_private_key_secret_name = ""
        self._set_issuing(False, "", "")
        self._event(
            EventType.NORMAL, EventReason.ISSUING, "The certificate has been successfully issued"
        )
        self._record_validity(stored)
        limit = self._input.spec.revision_history_limit
        if limit > 0 and workflow.patched(PRUNE_ORDERS_PATCH):
            await self._prune_orders(keep=limit, current=order)

    async def _prune_orders(self, *, keep: int, current: str) -> None:
        """Best effort: Orders a failure leaves behind go at the next issuance."""
        request = PruneOrdersRequest(certificate=self._ref(), keep=keep, current_order=current)
        await _best_effort(PRUNE_ORDERS, request, failure="old Orders not pruned")

    def _failed(self, message: str) -> None:
        self._status.failed_issuance_attempts += 1
        self._status.last_failure_time = workflow.now().strftime("%Y-%m-%dT%H:%M:%SZ")
        self._set_issuing(False, ConditionReason.FAILED, message)
        if self._status.ready != ConditionStatus.TRUE:
            self._set_ready(ConditionStatus.FALSE, ConditionReason.FAILED, message)
        self._event(EventType.WARNING, EventReason.ISSUANCE_FAILED, message)

    async def _step(self, step: Step[T], arg: object) -> T:
        try:
            return await execute(step, arg)
        except ActivityError as error:
            message = getattr(error.cause, "message", None) or str(error)
            self._failed(f"{step.summary}: {message}")
            raise _RoundFailed() from error

    def _secret_request(self, *, key_secret: str, chain_pem: str) -> StoreRequest:
        """What the TLS Secret should hold and carry, for this key and chain."""
        spec = self._input.spec
        return StoreRequest(
            certificate=self._ref(),
            secret_name=spec.secret_name,
            key_secret=key_secret,
            chain_pem=chain_pem,
            issuer_name=spec.issuer_ref.get("name") or self._input.issuer.name,
            issuer_kind=spec.issuer_ref.get("kind", "Issuer"),
            issuer_group=spec.issuer_ref.get("group", "acmeflow.io"),
            names=spec.names,
            encoding=spec.key_encoding,
            secret_labels=spec.secret_labels,
            secret_annotations=spec.secret_annotations,
            additional_output_formats=spec.additional_output_formats,
        )

    def _ref(self) -> CertificateRef:
        return CertificateRef(self._input.namespace, self._input.name, self._input.uid)

    def _key_request(self) -> KeyRequest:
        spec = self._input.spec
        return KeyRequest(
            certificate=self._ref(),
            secret_name=spec.secret_name,
            names=spec.names,
            algorithm=spec.key_algorithm,
            size=spec.key_size,
            rotation_policy=spec.rotation_policy,
            encoding=spec.key_encoding,
            issuer_ref=spec.issuer_ref,
        )

    # -- status ------------------------------------------------------------------------

    def _update(self, status: CertificateStatus) -> CertificateUpdate:
        current = self._input
        return CertificateUpdate(
            namespace=current.namespace, name=current.name, uid=current.uid, status=status
        )

    def _set_ready(self, status: ConditionStatus, reason: ConditionReason, message: str) -> None:
        self._status.ready, self._status.ready_reason = status, reason
        self._status.ready_message = message
        workflow.set_current_details(f"**Ready={status}** ({reason}): {message}")
        self._publisher.changed()

    def _set_issuing(self, issuing: bool, reason: str, message: str) -> None:
        self._status.issuing = issuing
        self._status.issuing_reason, self._status.issuing_message = reason, message
        self._publisher.changed()

    def _event(self, type: EventType, reason: EventReason, message: str) -> None:
        self._publisher.event(
            kind=ObjectKind.CERTIFICATE,
            name=self._input.name,
            type=type,
            reason=reason,
            message=message,
        )


async def _best_effort(step: Step[T], arg: object, *, failure: str) -> None:
    """A step whose failure is only logged (the next round tries again); a cancellation
    still ends the workflow, since the Certificate is going."""
    try:
        await execute(step, arg)
    except ActivityError as error:
        if is_cancelled_exception(error):
            raise
        message = getattr(error.cause, "message", None) or str(error)
        workflow.logger.warning("%s: %s", failure, message)


def _violation(inspection: SecretInspection) -> ConditionReason:
    """Why the Secret is no good, in cert-manager's words (an older worker gives none)."""
    try:
        return ConditionReason(inspection.violation or ConditionReason.ISSUING)
    except ValueError:
        return ConditionReason.ISSUING


class _RoundFailed(Exception):
    """A step failed for good; the round ends and the next one backs off."""
