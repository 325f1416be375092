"""``OrderWorkflow``: one ACME order, from new-order to the downloaded chain.

The workflow decides and waits; activities act. Each authorization that is not already
valid gets one challenge, solved in parallel with the others: present, self-check,
accept, wait for the CA, clean up. Then finalize with the CSR, wait while the CA is
``processing``, and download the chain. A failure ends the order ``invalid`` (the CA
said so) or ``errored`` (acmeflow gave up) with a reason a person can act on, and the
workflow run fails with that reason so Temporal shows it too. Cancellation cleans up
what was presented and deactivates pending authorizations.

A CA's ``rateLimited`` answer to any step is not a failure: the order says until when it
waits (reason and a Warning Event), sleeps on a durable timer for exactly the CA's
Retry-After, however long, and runs the step again, for as long as the CA keeps asking.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Final, NoReturn, TypeVar

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    FailureError,
    RetryState,
)

from acmeflow.contracts.acme import (
    AcmeOrderState,
    AcmeResource,
    AuthorizationState,
    CheckRequestInput,
    CreateOrderInput,
    DownloadInput,
    FinalizeInput,
)
from acmeflow.contracts.activities import ActivityName
from acmeflow.contracts.challenge import ChallengeSpec, SelfCheckResult
from acmeflow.contracts.errors import RATE_LIMITED
from acmeflow.contracts.issuer import AccountRef, IssuerConfig
from acmeflow.contracts.names import RequestedNames
from acmeflow.contracts.progress import (
    ChallengeProgress,
    EventReason,
    EventType,
    ObjectKind,
    OrderProgress,
    OrderUpdate,
    challenge_created_message,
    domain_verified_message,
)
from acmeflow.contracts.states import AuthorizationStatus, ChallengeState, OrderState
from acmeflow.workflows import search_attributes as attrs
from acmeflow.workflows.activity_steps import (
    ATTEMPT,
    NOTHING,
    SOLVER_ACTIVITIES,
    Step,
    execute,
)
from acmeflow.workflows.challenge_planning import OrderToPlan, plan_challenges
from acmeflow.workflows.order_metrics import record_challenge_verdict, record_order_finished
from acmeflow.workflows.retry_policies import ACME_CALL, POLL, SOLVER
from acmeflow.workflows.snapshot_publisher import SnapshotPublisher

CANCELLED_REASON = "Order cancelled through Temporal (workflow cancellation)"
_GIVE_BACK_TIMEOUT: Final = timedelta(seconds=60)
_SELF_CHECK_FIRST_DELAY: Final = timedelta(milliseconds=500)
_SELF_CHECK_MAX_DELAY: Final = timedelta(seconds=30)
_CREATE_ORDER_ATTEMPT: Final = timedelta(minutes=2)
_UNSTATED_RATE_LIMIT: Final = timedelta(seconds=60)
"""The wait of a ``RateLimited`` failure that carries none (the boundary always sets one)."""
T = TypeVar("T")


@dataclass
class OrderTimeouts:
    """How long each kind of waiting may last before the order is ``errored``."""

    acme_call_s: float = 600.0
    """Retrying an unreachable or failing CA (5xx, network, badNonce) for one step.

    A wait the CA asks for (``rateLimited`` with Retry-After) is not bounded by this."""
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
    replaces: str = ""
    """ARI identifier of the certificate this order renews, sent as ``replaces``."""


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


@dataclass(frozen=True)
class RateLimit:
    """The CA's ``rateLimited`` answer to a step: how long to stay away, and why."""

    wait: timedelta
    detail: str

    @staticmethod
    def behind(error: ActivityError) -> RateLimit | None:
        """The rate limit that failed the step, if that is what failed it."""
        cause = error.cause
        if not isinstance(cause, ApplicationError) or cause.type != RATE_LIMITED:
            return None
        details = cause.details
        detail = str(details[1]) if len(details) > 1 else cause.message
        if len(details) > 2:
            return RateLimit(wait=timedelta(seconds=float(details[2])), detail=detail)
        return RateLimit(wait=_UNSTATED_RATE_LIMIT, detail=detail)


def rate_limited_message(until: datetime, detail: str) -> str:
    """The Order's reason and Event while it waits out the CA's rate limit."""
    return f"rate limited by the CA until {until:%Y-%m-%dT%H:%M:%SZ}: {detail}"


def _subject(spec: ChallengeSpec) -> str:
    return f"{spec.type} for {spec.shown_name}"


@workflow.defn
class OrderWorkflow:
    @workflow.init
    def __init__(self, order: OrderInput) -> None:
        self._order = order
        self._progress = OrderProgress()
        self._account: AccountRef | None = None
        self._rate_limits: list[str] = []
        """The reason of each step waiting out a rate limit now, oldest first."""
        self._publisher = SnapshotPublisher(
            self._progress, ActivityName.PUBLISH_ORDER_PROGRESS, to=order.observer_task_queue
        )

    @workflow.query
    def progress(self) -> OrderProgress:
        return self._progress

    @workflow.run
    async def run(self, order: OrderInput) -> OrderResult:
        self._publisher.start(self._update)
        self._upsert_identity()
        # Not `finally`, for the reason given in _solve.
        try:
            await self._issue()
        except OrderFailed as failure:
            self._finish(failure.state, failure.reason)
        except asyncio.CancelledError:
            await self._after_cancellation()
            await self._publisher.stop()
            raise
        await self._publisher.stop()
        if self._progress.state != OrderState.VALID:
            raise ApplicationError(
                self._progress.reason,
                type=f"Order{self._progress.state.capitalize()}",
                non_retryable=True,
            )
        return OrderResult(
            state=OrderState.VALID, url=self._progress.url, certificate=self._progress.certificate
        )

    # -- the protocol -----------------------------------------------------------------

    async def _issue(self) -> None:
        created = await self._create_order()
        reading = Step(
            ActivityName.DESCRIBE_AUTHORIZATION,
            "reading authorizations",
            ACME_CALL,
            AuthorizationState,
        )
        authorizations = await asyncio.gather(
            *(self._run(reading, self._resource(url)) for url in created.authorization_urls)
        )
        await self._solve_all(await self._plan(authorizations))
        await self._finalize(created.url)

    async def _create_order(self) -> AcmeOrderState:
        order = self._order
        await self._run(
            Step(
                ActivityName.CHECK_REQUEST, "checking the certificate request", ACME_CALL, NOTHING
            ),
            CheckRequestInput(csr_pem=order.request, names=order.names),
        )
        account_uri = await self._run(
            Step(
                ActivityName.ENSURE_ACCOUNT,
                f"finding the ACME account at {order.issuer.server}",
                ACME_CALL,
                str,
            ),
            order.issuer,
        )
        self._account = AccountRef.of(order.issuer, account_uri)
        request = CreateOrderInput(
            account=self._account,
            csr_pem=order.request,
            profile=order.issuer.profile,
            replaces=order.replaces,
        )
        created = await self._run(
            Step(
                ActivityName.CREATE_ORDER,
                "creating the ACME order",
                ACME_CALL,
                AcmeOrderState,
                # The heartbeat notices a dead worker; the attempt leaves room for the
                # lookup of an earlier order, which heartbeats as it reads.
                attempt_timeout=_CREATE_ORDER_ATTEMPT,
                heartbeat=ATTEMPT,
            ),
            request,
            # A rate limit may have hit after the CA created the order (reading it back).
            again=replace(request, look_first=True),
        )
        self._progress.url = created.url
        self._progress.finalize_url = created.finalize_url
        workflow.upsert_search_attributes([attrs.ACME_ORDER_URL.value_set(created.url)])
        self._set_state(created.status)
        return created

    async def _plan(self, authorizations: list[AuthorizationState]) -> list[ChallengeProgress]:
        """Record the authorizations and create the challenges; observers see them first."""
        order = self._order
        plan = plan_challenges(
            authorizations,
            OrderToPlan(
                order_name=order.order_name,
                namespace=order.namespace,
                issuer_name=order.issuer.name,
                solvers=order.issuer.solvers,
                labels=order.labels,
            ),
        )
        self._progress.authorizations = plan.authorizations
        if plan.failure is not None:
            raise OrderFailed(plan.failure.state, plan.failure.reason)
        for spec in plan.challenges:
            self._event(
                ObjectKind.ORDER,
                order.order_name,
                EventType.NORMAL,
                EventReason.CHALLENGE_CREATED,
                challenge_created_message(spec.name, spec.dns_name),
            )
        self._progress.challenges = [ChallengeProgress(spec=spec) for spec in plan.challenges]
        self._changed()
        count = len(self._progress.challenges)
        self._step(f"solving {count} challenge(s)" if count else "all authorizations already valid")
        # Challenge resources exist before anything is presented, unless the bridge is away.
        await self._publisher.flush()
        return self._progress.challenges

    async def _finalize(self, order_url: str) -> None:
        timeouts = self._order.timeouts
        finalized = await self._run(
            Step(
                ActivityName.FINALIZE_ORDER,
                "finalizing with the CSR",
                POLL,
                AcmeOrderState,
                timeout=timedelta(seconds=timeouts.validation_s),
            ),
            FinalizeInput(order=self._resource(order_url), csr_pem=self._order.request),
        )
        self._set_state(finalized.status)
        done = await self._run(
            Step(
                ActivityName.AWAIT_ORDER,
                "waiting for the CA to issue the certificate",
                POLL,
                AcmeOrderState,
                timeout=timedelta(seconds=timeouts.issuance_s),
            ),
            self._resource(order_url),
        )
        if done.status != OrderState.VALID:
            raise OrderFailed(
                done.status or OrderState.INVALID,
                f"the CA marked the order {done.status}: {done.problem}",
            )
        await self._download(done.certificate_url)

    async def _download(self, certificate_url: str) -> None:
        self._progress.certificate = await self._run(
            Step(ActivityName.DOWNLOAD_CERTIFICATE, "downloading the certificate", ACME_CALL, str),
            DownloadInput(
                certificate=self._resource(certificate_url),
                preferred_chain=self._order.issuer.preferred_chain,
            ),
        )
        self._event(
            ObjectKind.ORDER,
            self._order.order_name,
            EventType.NORMAL,
            EventReason.ORDER_VALID,
            "Order completed successfully",
        )
        self._finish(OrderState.VALID, "")

    # -- challenges ---------------------------------------------------------------------

    async def _solve_all(self, challenges: list[ChallengeProgress]) -> None:
        tasks = [asyncio.create_task(self._solve(c)) for c in challenges]
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

    async def _solve(self, challenge: ChallengeProgress) -> None:
        self._challenge_event(
            challenge,
            EventType.NORMAL,
            EventReason.CHALLENGE_STARTED,
            "Challenge scheduled for processing",
        )
        challenge.processing = True
        self._changed()
        # Not `finally`: when a worker lets go of this run, Python closes the coroutine
        # with GeneratorExit and no activity may start; the run resumes from history on
        # another worker, which cleans up there.
        try:
            presenting_since = workflow.now()
            await self._present(challenge)
            await self._self_check(challenge)
            await self._validate(challenge, presenting_since)
        except (OrderFailed, asyncio.CancelledError):
            await self._clean_up(challenge)
            raise
        await self._clean_up(challenge)

    async def _present(self, challenge: ChallengeProgress) -> None:
        spec = challenge.spec
        try:
            await self._run_solver(challenge, SOLVER_ACTIVITIES[spec.type].present, "presenting")
        except OrderFailed as failure:
            challenge.reason = failure.reason
            self._challenge_event(
                challenge,
                EventType.WARNING,
                EventReason.PRESENT_ERROR,
                f"Error presenting challenge: {failure.reason}",
            )
            raise
        challenge.presented = True
        self._challenge_event(
            challenge,
            EventType.NORMAL,
            EventReason.CHALLENGE_PRESENTED,
            f"Presented challenge using {spec.type} challenge mechanism",
        )

    async def _self_check(self, challenge: ChallengeProgress) -> None:
        """Poll until the world serves what was presented; the reason says what it sees."""
        spec = challenge.spec
        timeout_s = self._order.timeouts.self_check_s
        deadline = workflow.now() + timedelta(seconds=timeout_s)
        delay = _SELF_CHECK_FIRST_DELAY
        check = Step(
            SOLVER_ACTIVITIES[spec.type].self_check,
            "self-checking",
            SOLVER,
            SelfCheckResult,
            subject=_subject(spec),
        )
        while not (result := await self._run(check, spec, on=challenge)).passed:
            self._set_reason(
                challenge, f"Waiting for {spec.type} challenge propagation: {result.reason}"
            )
            if workflow.now() >= deadline:
                raise OrderFailed(
                    OrderState.ERRORED,
                    f"self-check for {spec.shown_name} did not pass within {timeout_s:.0f}s: "
                    f"{result.reason}",
                )
            await workflow.sleep(delay)
            delay = min(delay * 2, _SELF_CHECK_MAX_DELAY)
        self._set_reason(challenge, "")

    async def _validate(self, challenge: ChallengeProgress, presenting_since: datetime) -> None:
        """Accept the challenge and wait for the CA's verdict on its authorization."""
        spec = challenge.spec
        await self._run(
            Step(
                ActivityName.ACCEPT_CHALLENGE,
                "accepting",
                ACME_CALL,
                NOTHING,
                subject=_subject(spec),
            ),
            self._resource(spec.url),
            on=challenge,
        )
        challenge.state = ChallengeState.PROCESSING
        self._changed()
        authz = await self._run(
            Step(
                ActivityName.AWAIT_AUTHORIZATION,
                "waiting for the CA to validate",
                POLL,
                AuthorizationState,
                subject=_subject(spec),
                timeout=timedelta(seconds=self._order.timeouts.validation_s),
            ),
            self._resource(spec.authorization_url),
            on=challenge,
        )
        record_challenge_verdict(spec.type, presenting_since)
        if authz.status != AuthorizationStatus.VALID:
            self._invalid(challenge, authz)
        challenge.state = ChallengeState.VALID
        challenge.reason = ""
        self._challenge_event(
            challenge,
            EventType.NORMAL,
            EventReason.DOMAIN_VERIFIED,
            domain_verified_message(spec.dns_name, spec.type),
        )

    def _invalid(self, challenge: ChallengeProgress, authz: AuthorizationState) -> NoReturn:
        challenge.state = ChallengeState.INVALID
        challenge.reason = authz.problem or f"authorization is {authz.status}"
        self._challenge_event(
            challenge,
            EventType.WARNING,
            EventReason.CHALLENGE_FAILED,
            f"Accepting challenge authorization failed: {challenge.reason}",
        )
        raise OrderFailed(
            OrderState.INVALID,
            f"authorization for {challenge.spec.shown_name} is {authz.status}: {challenge.reason}",
        )

    async def _clean_up(self, challenge: ChallengeProgress) -> None:
        challenge.processing = False
        clean_up = SOLVER_ACTIVITIES[challenge.spec.type].clean_up
        try:
            await self._run_solver(challenge, clean_up, "cleaning up")
        except OrderFailed as failure:
            self._challenge_event(
                challenge,
                EventType.WARNING,
                EventReason.CLEAN_UP_ERROR,
                f"Error cleaning up challenge: {failure.reason}",
            )
            return
        challenge.presented = False
        challenge.cleaned_up = True  # no command: histories replay as before
        self._changed()
        self._challenge_step(challenge, f"{challenge.state}; cleaned up")

    async def _after_cancellation(self) -> None:
        """Clean-up has run in each challenge; give back what the CA still holds open.

        Best effort and brief: the account may be gone with its namespace, and a
        cancelled order must not linger on a CA that stopped answering.
        """
        unsolved = [c for c in self._progress.challenges if c.state != ChallengeState.VALID]
        for challenge in unsolved if self._account else []:
            spec = challenge.spec
            try:
                await self._run(
                    Step(
                        ActivityName.DEACTIVATE_AUTHORIZATION,
                        f"deactivating the authorization for {spec.dns_name}",
                        ACME_CALL,
                        NOTHING,
                        timeout=_GIVE_BACK_TIMEOUT,
                    ),
                    self._resource(spec.authorization_url),
                    patient=False,
                )
            except OrderFailed as failure:
                workflow.logger.info("could not deactivate: %s", failure.reason)
        self._finish(OrderState.ERRORED, CANCELLED_REASON)

    # -- calling activities -------------------------------------------------------------

    async def _run_solver(
        self, challenge: ChallengeProgress, activity: ActivityName, description: str
    ) -> None:
        spec = challenge.spec
        await self._run(
            Step(activity, description, SOLVER, NOTHING, subject=_subject(spec)), spec, on=challenge
        )

    def _resource(self, url: str) -> AcmeResource:
        assert self._account is not None, "no ACME resource before the account is known"
        return AcmeResource(account=self._account, url=url)

    async def _run(
        self,
        step: Step[T],
        arg: object,
        *,
        on: ChallengeProgress | None = None,
        patient: bool = True,
        again: object | None = None,
    ) -> T:
        """Run one step, shown as the order's (or ``on``'s) step; a terminal failure ends
        the order ``errored``. A rate limit is waited out and the step runs again (with
        ``again`` as its argument when given), with a timeout of its own, unless the
        caller cannot wait (``patient=False``)."""
        total = step.timeout or timedelta(seconds=self._order.timeouts.acme_call_s)
        while True:
            if on is None:
                self._step(step.description)
            else:
                self._challenge_step(on, step.description)
            try:
                return await execute(step, arg, timeout=total)
            except ActivityError as error:
                limit = self._rate_limit_or_fail(step, error, total, patient=patient)
            await self._wait_out(limit)
            arg = arg if again is None else again

    def _rate_limit_or_fail(
        self, step: Step[Any], error: ActivityError, total: timedelta, *, patient: bool
    ) -> RateLimit:
        """What a failed step means: a rate limit to wait out, or the end of the order."""
        if isinstance(error.cause, CancelledError):
            # Only a cancellation cancels an activity (the workflow's, or a failed
            # sibling challenge's): carry on as one, so run() can give back and end.
            raise asyncio.CancelledError() from error
        limit = RateLimit.behind(error)
        if limit is not None and patient:
            return limit
        message = _failure_message(error)
        if error.retry_state == RetryState.TIMEOUT:
            message = f"{step.summary}: gave up after {total.total_seconds():.0f}s: {message}"
        raise OrderFailed(OrderState.ERRORED, message) from error

    async def _wait_out(self, limit: RateLimit) -> None:
        """Say until when the CA rate-limits us, sleep until then on a durable timer.

        The wake-up is rounded up to the whole second the reason shows, so the step never
        runs again before the time the Order said. Steps of several challenges may wait
        at once: the reason shows the newest wait still running.
        """
        now = workflow.now()
        until = (now + limit.wait + timedelta(microseconds=999_999)).replace(microsecond=0)
        message = rate_limited_message(until, limit.detail)
        self._rate_limits.append(message)
        self._progress.reason = message
        self._event(
            ObjectKind.ORDER,
            self._order.order_name,
            EventType.WARNING,
            EventReason.RATE_LIMITED,
            message,
        )
        self._changed()
        try:
            await workflow.sleep(until - now)
        finally:
            self._rate_limits.remove(message)
            self._progress.reason = self._rate_limits[-1] if self._rate_limits else ""
        self._changed()

    # -- progress -----------------------------------------------------------------------

    def _update(self, progress: OrderProgress) -> OrderUpdate:
        return OrderUpdate(
            workflow_id=workflow.info().workflow_id,
            namespace=self._order.namespace,
            order_name=self._order.order_name,
            resource_uid=self._order.resource_uid,
            progress=progress,
        )

    def _show(self) -> None:
        workflow.set_current_details(self._progress.describe())

    def _changed(self) -> None:
        """Something Kubernetes shows changed: observers get a new snapshot."""
        self._publisher.changed()
        self._show()

    def _step(self, step: str) -> None:
        """Steps show in the Temporal UI and queries only, so they publish nothing."""
        self._progress.step = step
        self._progress.step_after_events = len(self._progress.events)
        self._show()

    def _challenge_step(self, challenge: ChallengeProgress, step: str) -> None:
        challenge.step = step
        self._show()

    def _set_reason(self, challenge: ChallengeProgress, reason: str) -> None:
        if reason != challenge.reason:
            challenge.reason = reason
            self._changed()

    def _set_state(self, state: str) -> None:
        if state != self._progress.state:
            self._progress.state = state
            self._progress.step_after_events = len(self._progress.events)
            workflow.upsert_search_attributes([attrs.ORDER_STATE.value_set(state)])
        self._changed()

    def _finish(self, state: str, reason: str) -> None:
        self._progress.reason = reason
        if state != OrderState.VALID:
            self._progress.failure_time = workflow.now().isoformat()
            self._event(
                ObjectKind.ORDER,
                self._order.order_name,
                EventType.WARNING,
                EventReason.ORDER_FAILED,
                reason,
            )
        self._progress.step = "done" if state == OrderState.VALID else f"{state}: {reason}"
        self._set_state(state)
        record_order_finished(state)

    def _event(
        self, kind: ObjectKind, name: str, type: EventType, reason: EventReason, message: str
    ) -> None:
        self._publisher.event(kind=kind, name=name, type=type, reason=reason, message=message)
        self._show()

    def _challenge_event(
        self, challenge: ChallengeProgress, type: EventType, reason: EventReason, message: str
    ) -> None:
        self._event(ObjectKind.CHALLENGE, challenge.spec.name, type, reason, message)

    def _upsert_identity(self) -> None:
        order = self._order
        pairs: list[SearchAttributeUpdate[Any]] = [
            attrs.ORDER_NAME.value_set(order.order_name),
            attrs.ISSUER_NAME.value_set(order.issuer.name),
            attrs.DOMAINS.value_set(order.names.all()),
        ]
        if order.namespace:
            pairs.append(attrs.ORDER_NAMESPACE.value_set(order.namespace))
        if order.certificate_name:
            pairs.append(attrs.CERTIFICATE_NAME.value_set(order.certificate_name))
        workflow.upsert_search_attributes(pairs)
        self._show()
