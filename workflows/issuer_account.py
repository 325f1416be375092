"""``IssuerAccountWorkflow``: register an issuer's ACME account and keep saying if it can't.

One workflow per Issuer/ClusterIssuer. It registers (or finds) the account; while the CA
is unreachable or refuses, it says why in the Ready condition and tries again with
back-off (5 s doubling to 5 min), so the issuer recovers by itself when the server comes
back; a ``rateLimited`` answer waits exactly the CA's Retry-After instead. A spec change
(the ``update`` signal) starts over at once with the new settings.

While Ready it looks again every ``key_check_s``: the account key's public thumbprint,
kept from the last look (never the key), tells a key a user replaced in its Secret. Its
new account (``ensure_account`` finds none for the new key and registers one) is then
said in the Ready message and an ``AccountKeyChanged`` Event.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Final

from temporalio import workflow
from temporalio.exceptions import ActivityError

from acmeflow.contracts.activities import ActivityName
from acmeflow.contracts.issuer import IssuerConfig, RegisteredAccount
from acmeflow.contracts.progress import (
    ConditionReason,
    ConditionStatus,
    EventReason,
    EventType,
    IssuerStatus,
    IssuerUpdate,
    ObjectKind,
)
from acmeflow.workflows.activity_steps import Step, execute
from acmeflow.workflows.order import RateLimit, rate_limited_message
from acmeflow.workflows.retry_policies import ACCOUNT_REGISTRATION
from acmeflow.workflows.snapshot_publisher import SnapshotPublisher

FIRST_RETRY = timedelta(seconds=5)
MAX_RETRY = timedelta(minutes=5)
ATTEMPTS_PER_RUN = 50
KEY_CHECK_PATCH: Final = "account-key-thumbprint"
"""``register_account`` (which says the key's thumbprint) and the periodic look; histories
from before registered with ``ensure_account`` and looked again only on a spec change."""
REGISTERED = "The ACME account was registered with the ACME server"


@dataclass
class IssuerAccountInput:
    kind: str
    namespace: str
    name: str
    uid: str
    generation: int
    issuer: IssuerConfig
    observer_task_queue: str = ""
    key_check_s: float = 0
    """While Ready, look at the account key Secret again this often; 0: on a spec change only."""
    account_thumbprint: str = ""
    """The account key's public thumbprint at the last look, carried across continue-as-new."""


@workflow.defn
class IssuerAccountWorkflow:
    @workflow.init
    def __init__(self, start: IssuerAccountInput) -> None:
        self._input = start
        self._status = IssuerStatus()
        self._updated = False
        self._ca_asked: timedelta | None = None
        """The wait a rate-limited registration was told to keep, if it was."""
        self._thumbprint = start.account_thumbprint
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
                await self._wait_while_ready()
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
        workflow.continue_as_new(replace(self._input, account_thumbprint=self._thumbprint))

    async def _wait_while_ready(self) -> None:
        """Until a spec change, or (where set) the next look at the account key."""
        check = timedelta(seconds=self._input.key_check_s)
        if not check or not workflow.patched(KEY_CHECK_PATCH):
            await workflow.wait_condition(lambda: self._updated)
            return
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(lambda: self._updated, timeout=check)

    async def _account(self, issuer: IssuerConfig) -> RegisteredAccount:
        summary = f"register ACME account at {issuer.server}"
        if not workflow.patched(KEY_CHECK_PATCH):
            step = Step(ActivityName.ENSURE_ACCOUNT, summary, ACCOUNT_REGISTRATION, str)
            return RegisteredAccount(uri=await execute(step, issuer), thumbprint="")
        registered = Step(
            ActivityName.REGISTER_ACCOUNT, summary, ACCOUNT_REGISTRATION, RegisteredAccount
        )
        return await execute(registered, issuer)

    async def _register(self) -> bool:
        """One registration attempt; the Ready condition says how it went."""
        current = self._input
        self._ca_asked = None
        try:
            account = await self._account(current.issuer)
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
        previous_key, previous_uri = self._thumbprint, self._status.account_uri
        self._thumbprint = account.thumbprint or previous_key
        if previous_key and account.thumbprint and account.thumbprint != previous_key:
            await self._key_changed(account.uri, previous_uri)
            return True
        if account.thumbprint and self._shown(account.uri):
            return True  # a look that found nothing new publishes nothing
        self._status.account_uri = account.uri
        self._status.email = current.issuer.email
        await self._set_ready(ConditionStatus.TRUE, ConditionReason.ACCOUNT_REGISTERED, REGISTERED)
        return True

    def _shown(self, uri: str) -> bool:
        """The status already says Ready with this account, email and generation."""
        status, current = self._status, self._input
        return (
            status.ready == ConditionStatus.TRUE
            and status.account_uri == uri
            and status.email == current.issuer.email
            and status.observed_generation == current.generation
        )

    async def _key_changed(self, uri: str, previous_uri: str) -> None:
        """Say that the key in the Secret is not the one the account had, and what now."""
        previous = f" ({previous_uri})" if previous_uri else ""
        message = (
            f"Registered a new ACME account {uri} because the account key in "
            f"{self._input.issuer.account_key.describe()} changed; the previous key's "
            f"account{previous} is no longer used (no key-change roll-over: the previous "
            "key is gone from the Secret)"
        )
        self._status.account_uri = uri
        self._status.email = self._input.issuer.email
        kind = (
            ObjectKind.CLUSTER_ISSUER if self._input.kind == "ClusterIssuer" else ObjectKind.ISSUER
        )
        self._publisher.event(
            kind=kind,
            name=self._input.name,
            type=EventType.NORMAL,
            reason=EventReason.ACCOUNT_KEY_CHANGED,
            message=message,
        )
        await self._set_ready(ConditionStatus.TRUE, ConditionReason.ACCOUNT_REGISTERED, message)

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
