"""Test doubles for every activity the workflows schedule, registered under the same names.

A double records when it ran, in the test server's (skipped) time, so a test asserts the
waits the workflow chose. ``FakeCa`` answers the ACME steps and the solvers; ``FakeCluster``
plays the Certificate's Kubernetes side; ``FakeBridge`` receives the snapshots and can be
away (every delivery fails) or slow (the first delivery waits until released).
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio import activity
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from acmeflow.activities.errors import rate_limited
from acmeflow.contracts.acme import (
    AcmeOrderState,
    AcmeResource,
    AuthorizationState,
    ChallengeOffer,
    CheckRequestInput,
    CreateOrderInput,
    DownloadInput,
    FinalizeInput,
)
from acmeflow.contracts.activities import ActivityName
from acmeflow.contracts.certificate import (
    KeyRequest,
    OrderResourceRef,
    OrderResourceRequest,
    PreparedKey,
    SecretInspection,
    StoreRequest,
)
from acmeflow.contracts.challenge import ChallengeSpec, SelfCheckResult
from acmeflow.contracts.errors import ACME_PROBLEM, BAD_REQUEST
from acmeflow.contracts.issuer import (
    Http01Ingress,
    IssuerConfig,
    RegisteredAccount,
    SolverConfig,
)
from acmeflow.contracts.names import RequestedNames
from acmeflow.contracts.progress import CertificateUpdate, IssuerUpdate, OrderUpdate
from acmeflow.contracts.secrets import SecretRef
from acmeflow.contracts.states import AuthorizationStatus, ChallengeType, OrderState
from acmeflow.devstack.time_skipping_server import server_command
from acmeflow.worker.sandbox import workflow_runner
from acmeflow.workflows.certificate import (
    CertificateInput,
    CertificateSpecInput,
    CertificateWorkflow,
)
from acmeflow.workflows.issuer_account import IssuerAccountWorkflow
from acmeflow.workflows.order import OrderInput, OrderWorkflow
from acmeflow.workflows.search_attributes import SEARCH_ATTRIBUTE_TYPES

_INDEXED = {
    "Keyword": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    "KeywordList": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST,
}
CA = "https://ca.test"
CHAIN = "-----BEGIN CERTIFICATE-----\nZmFrZQ==\n-----END CERTIFICATE-----\n"
LIFETIME = timedelta(days=90)


async def start_test_server() -> WorkflowEnvironment:
    """The time-skipping test server, knowing acmeflow's search attributes."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(server_command())
    )
    # The test server adds search attributes but cannot list them (ensure_search_attributes).
    await env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=env.client.namespace,
            search_attributes={n: _INDEXED[t] for n, t in SEARCH_ATTRIBUTE_TYPES.items()},
        )
    )
    return env


def fake_issuer(server: str = f"{CA}/directory") -> IssuerConfig:
    return IssuerConfig(
        name="fake-issuer",
        server=server,
        account_key=SecretRef(path="/nonexistent/account.pem"),
        solvers=[SolverConfig(http01=Http01Ingress())],
    )


def now() -> datetime:
    """The test server's time when this attempt was scheduled: the workflow's time."""
    return activity.info().current_attempt_scheduled_time


def certificate_input(
    observer_queue: str,
    dns_name: str = "www.example.com",
    *,
    generation: int = 1,
    renew_before: timedelta = timedelta(0),
    renew_before_percentage: int = 0,
) -> CertificateInput:
    """The Certificate ``default/web`` for ``dns_name``, as the bridge would start it."""
    return CertificateInput(
        namespace="default",
        name="web",
        uid="uid-web",
        spec=CertificateSpecInput(
            secret_name="web-tls",
            names=RequestedNames(dns_names=[dns_name]),
            issuer_ref={"name": "fake-issuer", "kind": "Issuer"},
            generation=generation,
            renew_before_s=renew_before.total_seconds(),
            renew_before_percentage=renew_before_percentage,
        ),
        issuer=fake_issuer(),
        observer_task_queue=observer_queue,
    )


def order_input(observer_queue: str) -> OrderInput:
    """The Order ``default/www-1234`` for www.example.com, as the bridge would start it."""
    return OrderInput(
        order_name="www-1234",
        namespace="default",
        issuer=fake_issuer(),
        request="CSR",
        names=RequestedNames(dns_names=["www.example.com"]),
        observer_task_queue=observer_queue,
    )


@dataclass
class Calls:
    """When each double ran and with what, per activity name."""

    times: dict[str, list[datetime]] = field(default_factory=lambda: defaultdict(list))
    args: dict[str, list[Any]] = field(default_factory=lambda: defaultdict(list))

    def record(self, name: ActivityName, arg: Any) -> None:
        self.times[name].append(now())
        self.args[name].append(arg)

    def gaps(self, name: ActivityName) -> list[timedelta]:
        times = self.times[name]
        return [later - earlier for earlier, later in itertools.pairwise(times)]


@dataclass
class FakeCa:
    """Issues for any CSR whose names it does not refuse; one pending HTTP-01 authorization."""

    calls: Calls = field(default_factory=Calls)
    refused_names: set[str] = field(default_factory=set)
    authorization: AuthorizationStatus = AuthorizationStatus.PENDING

    def activities(self) -> list[Callable[..., Any]]:
        return [*self._account_and_order(), *self._authorization(), *self._solver()]

    def _account_and_order(self) -> list[Callable[..., Any]]:
        ca = self

        @activity.defn(name=ActivityName.CHECK_REQUEST)
        def check_request(request: CheckRequestInput) -> None:
            ca.calls.record(ActivityName.CHECK_REQUEST, request)
            refused = ca.refused_names & set(request.names.all())
            if refused:
                raise ApplicationError(
                    f"the CA refuses {', '.join(sorted(refused))}", type=BAD_REQUEST
                )

        @activity.defn(name=ActivityName.ENSURE_ACCOUNT)
        def ensure_account(issuer: IssuerConfig) -> str:
            ca.calls.record(ActivityName.ENSURE_ACCOUNT, issuer)
            return f"{CA}/account/1"

        @activity.defn(name=ActivityName.CREATE_ORDER)
        def create_order(request: CreateOrderInput) -> AcmeOrderState:
            ca.calls.record(ActivityName.CREATE_ORDER, request)
            return AcmeOrderState(
                url=f"{CA}/order/1",
                status=OrderState.PENDING,
                finalize_url=f"{CA}/order/1/finalize",
                authorization_urls=[f"{CA}/authz/1"],
            )

        @activity.defn(name=ActivityName.FINALIZE_ORDER)
        def finalize_order(request: FinalizeInput) -> AcmeOrderState:
            ca.calls.record(ActivityName.FINALIZE_ORDER, request)
            return _order(OrderState.PROCESSING)

        @activity.defn(name=ActivityName.AWAIT_ORDER)
        def await_order(resource: AcmeResource) -> AcmeOrderState:
            ca.calls.record(ActivityName.AWAIT_ORDER, resource)
            return _order(OrderState.VALID)

        @activity.defn(name=ActivityName.DOWNLOAD_CERTIFICATE)
        def download_certificate(request: DownloadInput) -> str:
            ca.calls.record(ActivityName.DOWNLOAD_CERTIFICATE, request)
            return CHAIN

        return [
            check_request,
            ensure_account,
            create_order,
            finalize_order,
            await_order,
            download_certificate,
        ]

    def _authorization(self) -> list[Callable[..., Any]]:
        ca = self

        @activity.defn(name=ActivityName.DESCRIBE_AUTHORIZATION)
        def describe_authorization(resource: AcmeResource) -> AuthorizationState:
            ca.calls.record(ActivityName.DESCRIBE_AUTHORIZATION, resource)
            return _authorization(resource.url, ca.authorization)

        @activity.defn(name=ActivityName.ACCEPT_CHALLENGE)
        def accept_challenge(resource: AcmeResource) -> None:
            ca.calls.record(ActivityName.ACCEPT_CHALLENGE, resource)

        @activity.defn(name=ActivityName.AWAIT_AUTHORIZATION)
        def await_authorization(resource: AcmeResource) -> AuthorizationState:
            ca.calls.record(ActivityName.AWAIT_AUTHORIZATION, resource)
            return _authorization(resource.url, AuthorizationStatus.VALID)

        @activity.defn(name=ActivityName.DEACTIVATE_AUTHORIZATION)
        def deactivate_authorization(resource: AcmeResource) -> None:
            ca.calls.record(ActivityName.DEACTIVATE_AUTHORIZATION, resource)

        return [
            describe_authorization,
            accept_challenge,
            await_authorization,
            deactivate_authorization,
        ]

    def _solver(self) -> list[Callable[..., Any]]:
        ca = self

        @activity.defn(name=ActivityName.PRESENT_HTTP01)
        def present_http01(spec: ChallengeSpec) -> None:
            ca.calls.record(ActivityName.PRESENT_HTTP01, spec)

        @activity.defn(name=ActivityName.SELF_CHECK_HTTP01)
        def self_check_http01(spec: ChallengeSpec) -> SelfCheckResult:
            ca.calls.record(ActivityName.SELF_CHECK_HTTP01, spec)
            return SelfCheckResult(passed=True)

        @activity.defn(name=ActivityName.CLEAN_UP_HTTP01)
        def clean_up_http01(spec: ChallengeSpec) -> None:
            ca.calls.record(ActivityName.CLEAN_UP_HTTP01, spec)

        return [present_http01, self_check_http01, clean_up_http01]


def _order(status: OrderState) -> AcmeOrderState:
    return AcmeOrderState(
        url=f"{CA}/order/1",
        status=status,
        finalize_url=f"{CA}/order/1/finalize",
        authorization_urls=[f"{CA}/authz/1"],
        certificate_url=f"{CA}/cert/1" if status == OrderState.VALID else "",
    )


def _authorization(url: str, status: AuthorizationStatus) -> AuthorizationState:
    return AuthorizationState(
        url=url,
        dns_name="www.example.com",
        wildcard=False,
        status=status,
        challenges=[
            ChallengeOffer(
                url=f"{url}/http-01", type=ChallengeType.HTTP01, token="token", key="token.key"
            )
        ],
    )


@dataclass
class FakeCluster:
    """The Certificate's Kubernetes side: one TLS Secret, valid for ``LIFETIME`` once stored."""

    calls: Calls = field(default_factory=Calls)
    not_before: datetime | None = None
    """When the certificate in the Secret starts being valid; None: no Secret yet."""

    def activities(self) -> list[Callable[..., Any]]:
        cluster = self

        @activity.defn(name=ActivityName.INSPECT_CERTIFICATE_SECRET)
        def inspect_certificate_secret(request: KeyRequest) -> SecretInspection:
            cluster.calls.record(ActivityName.INSPECT_CERTIFICATE_SECRET, request)
            return cluster.inspection()

        @activity.defn(name=ActivityName.PREPARE_PRIVATE_KEY)
        def prepare_private_key(request: KeyRequest) -> PreparedKey:
            cluster.calls.record(ActivityName.PREPARE_PRIVATE_KEY, request)
            return PreparedKey(
                csr_pem="CSR", key_secret=f"{request.secret_name}-next", generated=True
            )

        @activity.defn(name=ActivityName.CREATE_ORDER_RESOURCE)
        def create_order_resource(request: OrderResourceRequest) -> OrderResourceRef:
            cluster.calls.record(ActivityName.CREATE_ORDER_RESOURCE, request)
            return OrderResourceRef(name=f"order-{uuid.uuid4().hex[:8]}", uid=str(uuid.uuid4()))

        @activity.defn(name=ActivityName.STORE_CERTIFICATE)
        def store_certificate(request: StoreRequest) -> SecretInspection:
            cluster.calls.record(ActivityName.STORE_CERTIFICATE, request)
            cluster.not_before = now()
            return cluster.inspection()

        @activity.defn(name=ActivityName.REFRESH_TLS_SECRET)
        def refresh_tls_secret(request: StoreRequest) -> bool:
            cluster.calls.record(ActivityName.REFRESH_TLS_SECRET, request)
            return False  # the fake Secret carries no labels to bring up to date

        return [
            inspect_certificate_secret,
            prepare_private_key,
            create_order_resource,
            store_certificate,
            refresh_tls_secret,
        ]

    def inspection(self) -> SecretInspection:
        if self.not_before is None:
            return SecretInspection(
                up_to_date=False, reason="Issuing certificate as Secret does not exist"
            )
        return SecretInspection(
            up_to_date=True,
            not_before=_iso(self.not_before),
            not_after=_iso(self.not_before + LIFETIME),
        )


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat()


@dataclass
class FakeRegistrar:
    """``ensure_account`` that refuses until ``answers_after`` calls have failed."""

    calls: Calls = field(default_factory=Calls)
    answers_after: int | None = None
    """Failed calls before it answers; None: it never does."""
    rate_limit: timedelta | None = None
    """Refuse with ``rateLimited`` and this Retry-After instead of a server error."""
    thumbprint: str = "key-1"
    """The account key's thumbprint ``register_account`` answers (a test replaces the key)."""
    account_number: int = 7
    """The account URL ends with it (the account of another key has another)."""

    def activities(self) -> list[Callable[..., Any]]:
        registrar = self

        @activity.defn(name=ActivityName.REGISTER_ACCOUNT)
        def register_account(issuer: IssuerConfig) -> RegisteredAccount:
            return RegisteredAccount(uri=ensure_account(issuer), thumbprint=registrar.thumbprint)

        @activity.defn(name=ActivityName.ENSURE_ACCOUNT)
        def ensure_account(issuer: IssuerConfig) -> str:
            registrar.calls.record(ActivityName.ENSURE_ACCOUNT, issuer)
            failed = len(registrar.calls.times[ActivityName.ENSURE_ACCOUNT]) - 1
            if registrar.answers_after is None or failed < registrar.answers_after:
                if registrar.rate_limit is not None:
                    raise rate_limited(
                        "ACME server refused the request (rateLimited): too many registrations",
                        detail="too many registrations",
                        wait=registrar.rate_limit,
                    )
                raise ApplicationError(
                    "ACME server refused the request (serverInternal): try later",
                    type=ACME_PROBLEM,
                )
            return f"{issuer.server}/account/{registrar.account_number}"

        return [ensure_account, register_account]


@dataclass
class FakeBridge:
    """Receives snapshots. ``away``: every delivery fails; ``hold``: the first one waits."""

    away: bool = False
    hold: threading.Event | None = None
    orders: list[OrderUpdate] = field(default_factory=list)
    certificates: list[CertificateUpdate] = field(default_factory=list)
    issuers: list[IssuerUpdate] = field(default_factory=list)
    received_at: list[datetime] = field(default_factory=list)
    """When each accepted delivery (of any kind) arrived, in the workflows' time."""
    refused: int = 0

    def activities(self) -> list[Callable[..., Any]]:
        bridge = self

        @activity.defn(name=ActivityName.PUBLISH_ORDER_PROGRESS)
        def publish_order_progress(update: OrderUpdate) -> None:
            bridge.receive(bridge.orders, update)

        @activity.defn(name=ActivityName.PUBLISH_CERTIFICATE_PROGRESS)
        def publish_certificate_progress(update: CertificateUpdate) -> None:
            bridge.receive(bridge.certificates, update)

        @activity.defn(name=ActivityName.PUBLISH_ISSUER_STATUS)
        def publish_issuer_status(update: IssuerUpdate) -> None:
            bridge.receive(bridge.issuers, update)

        return [publish_order_progress, publish_certificate_progress, publish_issuer_status]

    def receive(self, into: list[Any], update: Any) -> None:
        if self.away:
            self.refused += 1
            raise RuntimeError("the bridge is away")
        if self.hold is not None and not into:
            self.hold.wait(timeout=25)
        into.append(update)
        self.received_at.append(now())


@dataclass
class Running:
    """Workers on a test's own task queue, and the queue the fake bridge listens on."""

    env: WorkflowEnvironment
    task_queue: str
    observer_queue: str

    async def start(self, run: Any, arg: Any, *, id: str) -> WorkflowHandle[Any, Any]:
        return await self.env.client.start_workflow(run, arg, id=id, task_queue=self.task_queue)


@asynccontextmanager
async def workers(
    env: WorkflowEnvironment,
    task_queue: str,
    activities: Sequence[Callable[..., Any]],
    bridge: FakeBridge | None = None,
) -> AsyncIterator[Running]:
    """The three workflows with ``activities``; the bridge on a queue of its own."""
    running = Running(env, task_queue, observer_queue=f"{task_queue}-bridge")
    executor = ThreadPoolExecutor(max_workers=8)
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(
            Worker(
                env.client,
                task_queue=task_queue,
                workflows=[OrderWorkflow, CertificateWorkflow, IssuerAccountWorkflow],
                activities=activities,
                activity_executor=executor,
                workflow_runner=workflow_runner(),
            )
        )
        if bridge is not None:
            await stack.enter_async_context(
                Worker(
                    env.client,
                    task_queue=running.observer_queue,
                    activities=bridge.activities(),
                    activity_executor=executor,
                )
            )
        yield running
    executor.shutdown(wait=False)


@dataclass
class Fakes:
    """Everything the workflows talk to: the CA, the cluster and the bridge."""

    ca: FakeCa = field(default_factory=FakeCa)
    cluster: FakeCluster = field(default_factory=FakeCluster)
    bridge: FakeBridge = field(default_factory=FakeBridge)

    def running(
        self, env: WorkflowEnvironment, task_queue: str
    ) -> AbstractAsyncContextManager[Running]:
        activities = [*self.ca.activities(), *self.cluster.activities()]
        return workers(env, task_queue, activities, self.bridge)


async def eventually(condition: Callable[[], bool | Awaitable[bool]], what: str) -> None:
    """Wait (in real time, briefly) for what the workers are doing right now to land."""
    for _ in range(400):
        outcome = condition()
        if await outcome if isinstance(outcome, Awaitable) else outcome:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"gave up waiting for {what}")
