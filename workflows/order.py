"""``OrderWorkflow``: one ACME order, from new-order to the downloaded chain.

The workflow decides and waits; activities act. Each authorization that is not already
valid gets one challenge, solved in parallel with the others: present, self-check,
accept, wait for the CA, clean up. Then finalize with the CSR, wait while the CA is
``processing``, and download the chain. A failure ends the order ``invalid`` (the CA
said so) or ``errored`` (acmeflow gave up) with a reason a person can act on, and the
workflow run fails with that reason so Temporal shows it too. Cancellation cleans up
what was presented and deactivates pending authorizations.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeUpdate
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    FailureError,
    RetryState,
)

from acmeflow.contracts.activities import ActivityName
from acmeflow.contracts.progress import (
    AuthorizationProgress,
    ChallengeProgress,
    ChallengeRef,
    EventReason,
    OrderEvent,
    OrderProgress,
    OrderUpdate,
    challenge_created_message,
    domain_verified_message,
)
from acmeflow.workflows import search_attributes as attrs
from acmeflow.workflows.order_metrics import record_challenge_verdict, record_order_finished
from acmeflow.workflows.solver_selection import select_solver

with workflow.unsafe.imports_passed_through():
    from acmeflow.activities.acme_order import AcmeOrderActivities
    from acmeflow.activities.dns01 import Dns01Activities
    from acmeflow.activities.http01 import Http01Activities
    from acmeflow.contracts.acme import (
        AcmeOrderState,
        AcmeResource,
        AuthorizationState,
        CheckRequestInput,
        CreateOrderInput,
        DownloadInput,
        FinalizeInput,
    )
    from acmeflow.contracts.challenge import ChallengeSpec, SelfCheckResult
    from acmeflow.contracts.errors import NON_RETRYABLE_TYPES
    from acmeflow.contracts.issuer import AccountRef, IssuerConfig
    from acmeflow.contracts.names import RequestedNames
    from acmeflow.contracts.states import ChallengeType

CANCELLED_REASON = "Order cancelled through Temporal (workflow cancellation)"


@dataclass
class OrderTimeouts:
    """How long each kind of waiting may last before the order is ``errored``."""

    acme_call_s: float = 600.0
    """Retrying an unreachable or failing CA (5xx, network, badNonce) for one step."""
    self_check_s: float = 1800.0
    """A self-check that keeps failing (token not served, TXT not visible)."""
    validation_s: float = 600.0
    """The CA validating an accepted challenge."""
    issuance_s: float = 600.0
    """The CA in ``processing`` after finalization."""


@dataclass
class OrderInput:
    """An order as its owner states it; secrets appear only as references."""

    order_name: str
    issuer: IssuerConfig
    request: str
    names: RequestedNames
    namespace: str = ""
    certificate_name: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    observer_task_queue: str = ""
    timeouts: OrderTimeouts = field(default_factory=OrderTimeouts)
    resource_uid: str = ""
    """UID of the Kubernetes Order, so observers ignore a recreated Order's namesake."""


@dataclass
class OrderResult:
    state: str
    url: str
    certificate: str


class OrderFailed(Exception):
    """Ends the order in a final failed state with a reason meant for a person."""

    def __init__(self, state: str, reason: str) -> None:
        super().__init__(reason)
        self.state = state
        self.reason = reason


def _failure_message(error: ActivityError) -> str:
    """The message that says what went wrong: the taxonomy's, or a timeout's."""
    message = error.message
    cause = error.cause
    while isinstance(cause, FailureError):
        message = cause.message or message
        if isinstance(cause, ApplicationError):
            break  # ours, from the taxonomy; what caused it is detail for the logs
        cause = cause.cause
    return message


_ACME_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=60),
    non_retryable_error_types=list(NON_RETRYABLE_TYPES),
)
_POLL_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=250),
    backoff_coefficient=1.5,
    maximum_interval=timedelta(seconds=5),
    non_retryable_error_types=list(NON_RETRYABLE_TYPES),
)
_SOLVER_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    non_retryable_error_types=list(NON_RETRYABLE_TYPES),
)
_CALL_TIMEOUT = timedelta(seconds=30)
_GIVE_BACK_TIMEOUT = timedelta(seconds=60)
_SELF_CHECK_FIRST_DELAY = timedelta(milliseconds=500)
_SELF_CHECK_MAX_DELAY = timedelta(seconds=30)


@workflow.defn
class OrderWorkflow:
    def __init__(self) -> None:
        self._progress = OrderProgress()
        self._published = 0
        self._closing = False
        self._input: OrderInput | None = None
        self._account_uri = ""

    @workflow.query
    def progress(self) -> OrderProgress:
        return self._progress

    @workflow.run
    async def run(self, order: OrderInput) -> OrderResult:
        self._input = order
        publisher = asyncio.create_task(self._publish_changes())
        self._upsert_identity(order)
        # Not `finally`, for the reason given in _solve.
        try:
            await self._issue(order)
        except OrderFailed as failure:
            self._finish(failure.state, failure.reason)
        except asyncio.CancelledError:
            await self._after_cancellation(order)
            await self._stop_publishing(publisher)
            raise
        await self._stop_publishing(publisher)
        if self._progress.state != "valid":
            raise ApplicationError(
                self._progress.reason,
                type=f"Order{self._progress.state.capitalize()}",
                non_retryable=True,
            )
        return OrderResult(
            state="valid", url=self._progress.url, certificate=self._progress.certificate
        )

    # -- the protocol -----------------------------------------------------------------

    async def _issue(self, order: OrderInput) -> None:
        self._step("checking the certificate request")
        await self._call(
            AcmeOrderActivities.check_request,
            CheckRequestInput(csr_pem=order.request, names=order.names),
            summary="check CSR against the order's names",
        )
        self._step(f"finding the ACME account at {order.issuer.server}")
        account_uri: str = await self._call(
            AcmeOrderActivities.ensure_account,
            order.issuer,
            summary=f"register or find ACME account at {order.issuer.server}",
        )
        self._account_uri = account_uri
        self._step("creating the ACME order")
        created: AcmeOrderState = await self._call(
            AcmeOrderActivities.create_order,
            CreateOrderInput(
                account=AccountRef.of(order.issuer, account_uri),
                csr_pem=order.request,
                profile=order.issuer.profile,
            ),
            summary="create ACME order",
            heartbeat=timedelta(seconds=10),
        )
        self._progress.url = created.url
        self._progress.finalize_url = created.finalize_url
        workflow.upsert_search_attributes([attrs.ACME_ORDER_URL.value_set(created.url)])
        self._set_state(created.status, "reading authorizations")

        def resource(url: str) -> AcmeResource:
            return AcmeResource(account=AccountRef.of(order.issuer, account_uri), url=url)

        authorizations: list[AuthorizationState] = await asyncio.gather(
            *(
                self._call(
                    AcmeOrderActivities.describe_authorization,
                    resource(url),
                    summary="read authorization",
                )
                for url in created.authorization_urls
            )
        )
        challenges = self._plan_challenges(order, authorizations)
        self._step(
            f"solving {len(challenges)} challenge(s)"
            if challenges
            else "all authorizations already valid"
        )
        await self._flush()
        await self._solve_all(challenges, resource)

        self._step("finalizing with the CSR")
        finalized: AcmeOrderState = await self._call(
            AcmeOrderActivities.finalize_order,
            FinalizeInput(order=resource(created.url), csr_pem=order.request),
            summary="finalize ACME order",
            poll=True,
            timeout=timedelta(seconds=order.timeouts.validation_s),
        )
        self._set_state(finalized.status, "waiting for the CA to issue the certificate")
        done: AcmeOrderState = await self._call(
            AcmeOrderActivities.await_order,
            resource(created.url),
            summary="wait while the CA issues",
            poll=True,
            timeout=timedelta(seconds=order.timeouts.issuance_s),
        )
        if done.status != "valid":
            raise OrderFailed(
                done.status or "invalid", f"the CA marked the order {done.status}: {done.problem}"
            )
        self._step("downloading the certificate")
        chain: str = await self._call(
            AcmeOrderActivities.download_certificate,
            DownloadInput(
                certificate=resource(done.certificate_url),
                preferred_chain=order.issuer.preferred_chain,
            ),
            summary="download certificate chain",
        )
        self._progress.certificate = chain
        self._event(
            "Order",
            order.order_name,
            "Normal",
            EventReason.ORDER_VALID,
            "Order completed successfully",
        )
        self._finish("valid", "")

    def _plan_challenges(
        self, order: OrderInput, authorizations: list[AuthorizationState]
    ) -> list[ChallengeProgress]:
        """One challenge per authorization that is not valid yet, by the solver rules."""
        planned: list[ChallengeProgress] = []
        # The CA lists authorizations in any order; names order them, so -0 is stable.
        for authz in sorted(authorizations, key=lambda a: (a.dns_name, a.wildcard)):
            self._progress.authorizations.append(
                AuthorizationProgress(
                    url=authz.url,
                    identifier=authz.dns_name,
                    wildcard=authz.wildcard,
                    initial_state=authz.status,
                    challenges=[
                        ChallengeRef(url=c.url, token=c.token, type=c.type)
                        for c in authz.challenges
                    ],
                )
            )
            if authz.status == "valid":
                continue
            if authz.status != "pending":
                raise OrderFailed(
                    "invalid",
                    f"authorization for {authz.dns_name} is {authz.status}: {authz.problem}",
                )
            offered = {c.type for c in authz.challenges}
            selection = select_solver(
                order.issuer.solvers, authz.dns_name, authz.wildcard, offered, order.labels
            )
            shown = f"*.{authz.dns_name}" if authz.wildcard else authz.dns_name
            if selection is None:
                raise OrderFailed(
                    "errored",
                    (
                        f"no solver of issuer {order.issuer.name} can validate {shown}: the CA "
                        f"offers {', '.join(sorted(offered)) or 'no supported challenge'}"
                        + ("; a wildcard needs a DNS-01 solver" if authz.wildcard else "")
                    ),
                )
            offer = next(c for c in authz.challenges if c.type == selection.solver.challenge_type)
            name = f"{order.order_name}-{len(planned)}"
            planned.append(
                ChallengeProgress(
                    spec=ChallengeSpec(
                        name=name,
                        namespace=order.namespace,
                        order_name=order.order_name,
                        dns_name=authz.dns_name,
                        wildcard=authz.wildcard,
                        type=offer.type,
                        token=offer.token,
                        key=offer.key,
                        url=offer.url,
                        authorization_url=authz.url,
                        solver=selection.solver,
                    )
                )
            )
            self._event(
                "Order",
                order.order_name,
                "Normal",
                EventReason.CHALLENGE_CREATED,
                challenge_created_message(name, authz.dns_name),
            )
        self._progress.challenges = planned
        self._changed()
        return planned

    async def _solve_all(
        self, challenges: list[ChallengeProgress], resource: Callable[[str], AcmeResource]
    ) -> None:
        tasks = [asyncio.create_task(self._solve(c, resource)) for c in challenges]
        if not tasks:
            return
        try:
            _, pending = await workflow.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        except asyncio.CancelledError:
            for task in tasks:
                task.cancel()
            await workflow.wait(tasks)
            raise
        for task in pending:
            task.cancel()
        if pending:
            await workflow.wait(pending)
        for task in tasks:
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]

    async def _solve(
        self, challenge: ChallengeProgress, resource: Callable[[str], AcmeResource]
    ) -> None:
        spec = challenge.spec
        shown = f"*.{spec.dns_name}" if spec.wildcard else spec.dns_name
        self._challenge_event(
            challenge, "Normal", EventReason.CHALLENGE_STARTED, "Challenge scheduled for processing"
        )
        challenge.processing = True
        self._changed()
        # Not `finally`: when a worker lets go of this run, Python closes the coroutine
        # with GeneratorExit and no activity may start; the run resumes from history on
        # another worker, which cleans up there.
        try:
            await self._verify(challenge, resource, shown)
        except (OrderFailed, asyncio.CancelledError):
            await self._clean_up(challenge, shown)
            raise
        await self._clean_up(challenge, shown)

    async def _verify(
        self, challenge: ChallengeProgress, resource: Callable[[str], AcmeResource], shown: str
    ) -> None:
        """Present, self-check, accept and wait for the CA; the caller cleans up."""
        spec = challenge.spec
        http = spec.type == ChallengeType.HTTP01
        kind = "http01" if http else "dns01"
        presenting_since = workflow.now()
        self._challenge_step(challenge, f"presenting {spec.type}")
        try:
            await self._call(
                Http01Activities.present_http01 if http else Dns01Activities.present_dns01,
                spec,
                summary=f"present {spec.type} for {shown}",
                solver=True,
            )
        except OrderFailed as failure:
            challenge.reason = failure.reason
            self._challenge_event(
                challenge,
                "Warning",
                EventReason.PRESENT_ERROR,
                f"Error presenting challenge: {failure.reason}",
            )
            raise
        challenge.presented = True
        self._challenge_event(
            challenge,
            "Normal",
            EventReason.CHALLENGE_PRESENTED,
            f"Presented challenge using {spec.type} challenge mechanism",
        )
        await self._self_check(challenge, kind, shown)
        self._challenge_step(challenge, "accepted; waiting for the CA to validate")
        await self._call(
            AcmeOrderActivities.accept_challenge,
            resource(spec.url),
            summary=f"accept {spec.type} for {shown}",
        )
        challenge.state = "processing"
        self._changed()
        authz: AuthorizationState = await self._call(
            AcmeOrderActivities.await_authorization,
            resource(spec.authorization_url),
            summary=f"wait for CA validation of {shown}",
            poll=True,
            timeout=timedelta(seconds=self._timeouts.validation_s),
        )
        record_challenge_verdict(spec.type, presenting_since)
        if authz.status != "valid":
            challenge.state = "invalid"
            challenge.reason = authz.problem or f"authorization is {authz.status}"
            self._challenge_event(
                challenge,
                "Warning",
                EventReason.CHALLENGE_FAILED,
                f"Accepting challenge authorization failed: {challenge.reason}",
            )
            raise OrderFailed(
                "invalid", f"authorization for {shown} is {authz.status}: {challenge.reason}"
            )
        challenge.state = "valid"
        challenge.reason = ""
        self._challenge_event(
            challenge,
            "Normal",
            EventReason.DOMAIN_VERIFIED,
            domain_verified_message(spec.dns_name, spec.type),
        )

    async def _self_check(self, challenge: ChallengeProgress, kind: str, shown: str) -> None:
        """Poll until the world serves what was presented; the reason says what it sees."""
        spec = challenge.spec
        deadline = workflow.now() + timedelta(seconds=self._timeouts.self_check_s)
        delay = _SELF_CHECK_FIRST_DELAY
        self._challenge_step(challenge, "self-checking")
        while True:
            result: SelfCheckResult = await self._call(
                Http01Activities.self_check_http01
                if kind == "http01"
                else Dns01Activities.self_check_dns01,
                spec,
                summary=f"self-check {spec.type} for {shown}",
                solver=True,
            )
            if result.passed:
                if challenge.reason:
                    challenge.reason = ""
                    self._changed()
                return
            reason = f"Waiting for {spec.type} challenge propagation: {result.reason}"
            if reason != challenge.reason:
                challenge.reason = reason
                self._changed()
            if workflow.now() >= deadline:
                raise OrderFailed(
                    "errored",
                    f"self-check for {shown} did not pass within "
                    f"{self._timeouts.self_check_s:.0f}s: "
                    f"{result.reason}",
                )
            await workflow.sleep(delay)
            delay = min(delay * 2, _SELF_CHECK_MAX_DELAY)

    async def _clean_up(self, challenge: ChallengeProgress, shown: str) -> None:
        spec = challenge.spec
        challenge.processing = False
        try:
            await self._call(
                Http01Activities.clean_up_http01
                if spec.type == ChallengeType.HTTP01
                else Dns01Activities.clean_up_dns01,
                spec,
                summary=f"clean up {spec.type} for {shown}",
                solver=True,
            )
            challenge.presented = False
            self._changed()
            self._challenge_step(challenge, f"{challenge.state}; cleaned up")
        except OrderFailed as failure:
            self._challenge_event(
                challenge,
                "Warning",
                EventReason.CLEAN_UP_ERROR,
                f"Error cleaning up challenge: {failure.reason}",
            )

    async def _after_cancellation(self, order: OrderInput) -> None:
        """Clean-up has run in each challenge; give back what the CA still holds open.

        Best effort and brief: the account may be gone with its namespace, and a
        cancelled order must not linger on a CA that stopped answering.
        """
        account_uri = self._account_uri
        pending = [c for c in self._progress.challenges if c.state not in ("valid",)]
        for challenge in pending if account_uri else []:
            try:
                await self._call(
                    AcmeOrderActivities.deactivate_authorization,
                    AcmeResource(
                        account=AccountRef.of(order.issuer, account_uri),
                        url=challenge.spec.authorization_url,
                    ),
                    summary=f"deactivate authorization for {challenge.spec.dns_name}",
                    timeout=_GIVE_BACK_TIMEOUT,
                )
            except OrderFailed as failure:
                workflow.logger.info("could not deactivate: %s", failure.reason)
        self._finish("errored", CANCELLED_REASON)

    # -- calling activities -------------------------------------------------------------

    @property
    def _timeouts(self) -> OrderTimeouts:
        assert self._input is not None
        return self._input.timeouts

    async def _call(
        self,
        activity: Any,
        arg: Any,
        *,
        summary: str,
        poll: bool = False,
        solver: bool = False,
        timeout: timedelta | None = None,
        heartbeat: timedelta | None = None,
    ) -> Any:
        """Run one activity; a terminal failure becomes ``OrderFailed('errored', ...)``."""
        retry = _POLL_RETRY if poll else _SOLVER_RETRY if solver else _ACME_RETRY
        total = timeout or timedelta(seconds=self._timeouts.acme_call_s)
        try:
            return await workflow.execute_activity_method(
                activity,
                arg,
                start_to_close_timeout=_CALL_TIMEOUT,
                schedule_to_close_timeout=total,
                heartbeat_timeout=heartbeat,
                retry_policy=retry,
                summary=summary,
            )
        except ActivityError as error:
            if isinstance(error.cause, CancelledError):
                # Only a cancellation cancels an activity (the workflow's, or a failed
                # sibling challenge's): carry on as one, so run() can give back and end.
                raise asyncio.CancelledError() from error
            message = _failure_message(error)
            if error.retry_state == RetryState.TIMEOUT:
                message = f"{summary}: gave up after {total.total_seconds():.0f}s: {message}"
            raise OrderFailed("errored", message) from error

    # -- progress -----------------------------------------------------------------------

    def _changed(self) -> None:
        """Something Kubernetes shows changed: observers get a new snapshot."""
        self._progress.version += 1
        workflow.set_current_details(self._progress.describe())

    def _step(self, step: str) -> None:
        """Steps show in the Temporal UI and queries only, so they publish nothing."""
        self._progress.step = step
        workflow.set_current_details(self._progress.describe())

    def _challenge_step(self, challenge: ChallengeProgress, step: str) -> None:
        challenge.step = step
        workflow.set_current_details(self._progress.describe())

    def _set_state(self, state: str, step: str) -> None:
        if state != self._progress.state:
            self._progress.state = state
            workflow.upsert_search_attributes([attrs.ORDER_STATE.value_set(state)])
        self._progress.step = step
        self._changed()

    def _finish(self, state: str, reason: str) -> None:
        self._progress.reason = reason
        if state != "valid":
            self._progress.failure_time = workflow.now().isoformat()
            if self._input is not None:
                self._event(
                    "Order", self._input.order_name, "Warning", EventReason.ORDER_FAILED, reason
                )
        self._set_state(state, "done" if state == "valid" else f"{state}: {reason}")
        record_order_finished(state)

    def _event(self, kind: str, name: str, event_type: str, reason: str, message: str) -> None:
        self._progress.events.append(
            OrderEvent(
                seq=len(self._progress.events),
                at=workflow.now().isoformat(),
                kind=kind,
                object_name=name,
                type=event_type,
                reason=reason,
                message=message,
            )
        )
        self._changed()

    def _challenge_event(
        self, challenge: ChallengeProgress, event_type: str, reason: str, message: str
    ) -> None:
        self._event("Challenge", challenge.spec.name, event_type, reason, message)

    def _upsert_identity(self, order: OrderInput) -> None:
        names = list(
            dict.fromkeys(
                ([order.names.common_name] if order.names.common_name else [])
                + order.names.dns_names
                + order.names.ip_addresses
            )
        )
        pairs: list[SearchAttributeUpdate[Any]] = [
            attrs.ORDER_NAME.value_set(order.order_name),
            attrs.ISSUER_NAME.value_set(order.issuer.name),
            attrs.DOMAINS.value_set(names),
        ]
        if order.namespace:
            pairs.append(attrs.ORDER_NAMESPACE.value_set(order.namespace))
        if order.certificate_name:
            pairs.append(attrs.CERTIFICATE_NAME.value_set(order.certificate_name))
        workflow.upsert_search_attributes(pairs)
        workflow.set_current_details(self._progress.describe())

    # -- publishing to the observer ----------------------------------------------------

    async def _publish_changes(self) -> None:
        """Deliver the newest snapshot whenever it changes; slow observers see fewer."""
        assert self._input is not None
        order = self._input
        if not order.observer_task_queue:
            return
        while True:
            await workflow.wait_condition(
                lambda: self._progress.version > self._published or self._closing
            )
            if self._progress.version <= self._published:
                return
            version = self._progress.version
            update = OrderUpdate(
                workflow_id=workflow.info().workflow_id,
                namespace=order.namespace,
                order_name=order.order_name,
                resource_uid=order.resource_uid,
                progress=copy.deepcopy(self._progress),
            )
            await workflow.execute_activity(
                ActivityName.PUBLISH_ORDER_PROGRESS,
                update,
                task_queue=order.observer_task_queue,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=RetryPolicy(
                    initial_interval=timedelta(milliseconds=500),
                    maximum_interval=timedelta(seconds=30),
                ),
                summary=f"publish progress v{version}",
            )
            self._published = version

    async def _stop_publishing(self, publisher: asyncio.Task[None]) -> None:
        """Observers see the final snapshot before the run ends."""
        self._closing = True
        await self._flush()
        await publisher

    async def _flush(self) -> None:
        """Wait until observers have seen everything so far (Challenges exist, final state)."""
        assert self._input is not None
        if self._input.observer_task_queue:
            await workflow.wait_condition(lambda: self._published >= self._progress.version)
