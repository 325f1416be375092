"""The ACME protocol steps of an order, each an idempotent activity.

Every step re-reads the order or authorization by URL before acting, so a step retried
on another worker after a crash continues from what the CA knows, not from memory.

The steps use the ``acme`` package's public API where acme 5.9 has one (``new_account``,
``poll``, ``answer_challenge``, ``begin_finalization``, ``deactivate_authorization``, the
``messages`` types) and two private calls where it has none: ``_post`` to create an order
(see ``create_order``) and ``_post_as_get`` to read an order, challenge, account, orders
list or certificate by URL (``_fetch``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import requests
from acme import client as acme_client
from acme import errors as acme_errors
from acme import messages
from josepy.json_util import field
from temporalio import activity
from temporalio.exceptions import ApplicationError

from acmeflow.activities.acme_answers import (
    acme_status,
    alternate_links,
    authorization_state,
    challenge_response,
    order_state,
    top_issuer_common_name,
)
from acmeflow.activities.acme_client import Account, AcmeClients, generate_account_key
from acmeflow.activities.csr import check_csr_matches, load_csr
from acmeflow.activities.errors import (
    acme_step,
    bad_request,
    retry_after_delay,
    still_waiting,
)
from acmeflow.activities.secret_refs import SecretStore
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
from acmeflow.contracts.errors import ACME_PROBLEM, BAD_NONCE
from acmeflow.contracts.issuer import IssuerConfig
from acmeflow.contracts.states import AuthorizationStatus, ChallengeState, OrderState
from acmeflow.crds import order_requests

_Parsed = TypeVar("_Parsed")

OPEN_ORDER_STATES = (OrderState.PENDING, OrderState.READY)
UNDECIDED_ORDER_STATES = (OrderState.PENDING, OrderState.READY, OrderState.PROCESSING)
DEACTIVATABLE = (AuthorizationStatus.PENDING, AuthorizationStatus.VALID)


def _fetch(account: Account, url: str, action: str) -> requests.Response:
    """POST-as-GET (RFC 8555 §6.3) of a resource by URL: the truth after any crash."""
    with acme_step(action):
        # acme 5.9 reads only authorizations by URL (poll); orders, challenges, accounts,
        # orders lists and certificates have no public read.
        return account.client._post_as_get(url)


def _read(
    account: Account, url: str, parse: Callable[[Any], _Parsed], action: str
) -> tuple[_Parsed, requests.Response]:
    response = _fetch(account, url, action)
    with acme_step(action):
        return parse(response.json()), response


def _read_order(
    account: Account, url: str, action: str
) -> tuple[AcmeOrderState, requests.Response]:
    order, response = _read(account, url, messages.Order.from_json, action)
    return order_state(url, order), response


def _not_yet(message: str, response: requests.Response) -> ApplicationError:
    """StillWaiting, retried after the CA's Retry-After when it sent one."""
    return still_waiting(message, retry_after_delay(response.headers.get("Retry-After")))


class ReplacingNewOrder(messages.NewOrder):
    """new-order with RFC 9773's ``replaces``: the ARI id of the certificate it renews."""

    replaces: str | None = field("replaces", omitempty=True)


def _post_new_order(account: Account, new_order: messages.NewOrder) -> requests.Response:
    try:
        with acme_step("create ACME order"):
            # Not ClientV2.new_order: it reads every authorization before it returns, and
            # the order URL must be recorded (heartbeat) before anything else can fail.
            return account.client._post(account.client.directory["newOrder"], new_order)
    except acme_errors.ConflictError as conflict:
        # ``acme`` turns every 409 into ConflictError (new-account's "exists") and drops
        # the problem document; at new-order a 409 is RFC 9773's alreadyReplaced.
        raise ApplicationError(
            "create ACME order: ACME server refused the request (HTTP 409 Conflict): the "
            "certificate named in replaces already has a replacement",
            "http409",
            type=ACME_PROBLEM,
            non_retryable=True,
        ) from conflict


_NOT_ABOUT_REPLACES = frozenset({"badNonce", "rateLimited"})


def refuses_replaces(error: ApplicationError) -> bool:
    """The CA answered the new-order with a problem document that a retry without
    ``replaces`` may not meet (``alreadyReplaced``, ``unauthorized``, ``malformed``, or
    Pebble's ``serverInternal`` for a certificate it does not know); not a lost connection,
    a bad nonce or a rate limit (a replacement is often exempt from those)."""
    code = str(error.details[0]) if error.details else ""
    return bool(code) and code not in _NOT_ABOUT_REPLACES


def _poll_authorization(
    account: Account, url: str, action: str
) -> tuple[messages.AuthorizationResource, requests.Response]:
    unread = messages.AuthorizationResource(uri=url, body=messages.Authorization())
    with acme_step(action):
        return account.client.poll(unread)


class AcmeOrderActivities:
    """ACME steps sharing one cache of per-account clients; built once per worker."""

    def __init__(self, clients: AcmeClients, secrets: SecretStore) -> None:
        self._clients = clients
        self._secrets = secrets

    @activity.defn(name=ActivityName.CHECK_REQUEST)
    def check_request(self, request: CheckRequestInput) -> None:
        """Refuse a CSR that does not ask for exactly the order's names; no ACME call."""
        check_csr_matches(request.csr_pem, request.names)

    @activity.defn(name=ActivityName.ENSURE_ACCOUNT)
    def ensure_account(self, issuer: IssuerConfig) -> str:
        """Find or register the issuer's account (idempotent); return its URL.

        A worker remembers accounts it registered for an hour (keyed by the key itself),
        so a busy issuer does not cost a new-account round trip per order.
        """
        key_pem = self._secrets.read(issuer.account_key)
        if key_pem is None:
            key_pem = self._secrets.create(issuer.account_key, generate_account_key())
        remembered = self._clients.remembered_account(issuer, key_pem)
        if remembered:
            return remembered
        uri = self._register(issuer)
        self._clients.remember_account(issuer, key_pem, uri)
        return uri

    def _register(self, issuer: IssuerConfig) -> str:
        key, alg = self._clients.account_key(issuer)
        net = self._clients.network(issuer, key, alg)
        directory = self._clients.directory(issuer, net)
        client = acme_client.ClientV2(directory, net)
        contact = (f"mailto:{issuer.email}",) if issuer.email else ()
        eab = None
        if issuer.external_account_binding is not None:
            binding = issuer.external_account_binding
            purpose = (
                f"External Account Binding HMAC key for key ID {binding.key_id} "
                "(externalAccountBinding.keySecretRef)"
            )
            hmac_key = self._secrets.require(binding.key_secret, purpose).decode().strip()
            eab = messages.ExternalAccountBinding.from_data(
                account_public_key=key.public_key(),
                kid=binding.key_id,
                hmac_key=hmac_key,
                directory=directory,
                hmac_alg=binding.key_algorithm,
            )
        registration = messages.NewRegistration(
            contact=contact, terms_of_service_agreed=True, external_account_binding=eab
        )
        try:
            with acme_step(f"register ACME account at {issuer.server}"):
                return str(client.new_account(registration).uri)
        except acme_errors.ConflictError as existing:
            return str(existing.location)
        except ApplicationError as error:
            if error.details and error.details[0] == "externalAccountRequired":
                raise bad_request(
                    f"{issuer.server} requires External Account Binding: set "
                    "externalAccountBinding (keyID and keySecretRef) on the issuer"
                ) from error
            refused = issuer.external_account_binding
            if refused is not None and error.details and error.details[0] == "unauthorized":
                raise bad_request(
                    f"{issuer.server} refused the External Account Binding with key ID "
                    f"{refused.key_id} ({error.message}): check keyID and the HMAC key in "
                    f"{refused.key_secret.describe()}, which must be the pair the CA gave"
                ) from error
            raise

    @activity.defn(name=ActivityName.CREATE_ORDER)
    def create_order(self, request: CreateOrderInput) -> AcmeOrderState:
        """Create the ACME order once: a retry after a crash finds the first one.

        The order URL is recorded as heartbeat details the moment the CA answers. If a
        worker died before its answer arrived, the retry looks through the account's whole
        orders list (RFC 8555 §7.1.2.1, ``find_open_order``) for an order with exactly these
        identifiers still open before creating another; so does a step run again after a
        rate limit (``look_first``). CAs without an orders list (Let's Encrypt) leave that
        window open: at worst one extra pending order, which expires
        unused.
        """
        account = self._clients.account(request.account)
        created = activity.info().heartbeat_details
        if created:
            state, _ = _read_order(account, str(created[0]), "reload ACME order")
            return state
        dns_names, ips = order_requests.identifiers(load_csr(request.csr_pem))
        wanted = {("dns", n.lower()) for n in dns_names} | {("ip", ip) for ip in ips}
        if activity.info().attempt > 1 or request.look_first:
            found = find_open_order(account, wanted, profile=request.profile)
            if found is not None:
                activity.heartbeat(found.url)
                return found
        identifiers = [
            messages.Identifier(typ=messages.IDENTIFIER_FQDN, value=n) for n in dns_names
        ]
        identifiers += [messages.Identifier(typ=messages.IDENTIFIER_IP, value=ip) for ip in ips]
        new_order = ReplacingNewOrder(
            identifiers=identifiers,
            profile=request.profile or None,
            replaces=request.replaces or None,
        )
        try:
            response = _post_new_order(account, new_order)
        except ApplicationError as refused:
            if not request.replaces or not refuses_replaces(refused):
                raise
            # RFC 9773 §5: a client may order again without ``replaces``; the renewal matters
            # more than the CA's bookkeeping of which certificate it replaces.
            activity.logger.warning(
                "the CA refused replaces=%s (%s); ordering without it",
                request.replaces,
                refused.message,
            )
            response = _post_new_order(account, new_order.update(replaces=None))
        url = str(response.headers["Location"])
        activity.heartbeat(url)
        with acme_step("read the new ACME order"):
            return order_state(url, messages.Order.from_json(response.json()))

    @activity.defn(name=ActivityName.DESCRIBE_AUTHORIZATION)
    def describe_authorization(self, resource: AcmeResource) -> AuthorizationState:
        account = self._clients.account(resource.account)
        authorization, _ = _poll_authorization(account, resource.url, "read authorization")
        return authorization_state(resource.url, authorization.body, account.thumbprint)

    @activity.defn(name=ActivityName.ACCEPT_CHALLENGE)
    def accept_challenge(self, challenge: AcmeResource) -> None:
        """Tell the CA to validate; a challenge already past ``pending`` is left alone.

        The answer is the response object of the challenge's own type (``HTTP01Response``,
        ``DNS01Response``), read back from the CA rather than remembered.
        """
        account = self._clients.account(challenge.account)
        body, _ = _read(account, challenge.url, messages.ChallengeBody.from_json, "read challenge")
        if acme_status(body.status, ChallengeState) is not ChallengeState.PENDING:
            return
        with acme_step("accept challenge"):
            account.client.answer_challenge(body, challenge_response(body, account.thumbprint))

    @activity.defn(name=ActivityName.AWAIT_AUTHORIZATION)
    def await_authorization(self, authorization: AcmeResource) -> AuthorizationState:
        """Return the authorization once final; raise StillWaiting (retried) before."""
        account = self._clients.account(authorization.account)
        polled, response = _poll_authorization(account, authorization.url, "poll authorization")
        state = authorization_state(authorization.url, polled.body, account.thumbprint)
        if state.status is AuthorizationStatus.PENDING:
            raise _not_yet(f"authorization for {state.dns_name} is still pending", response)
        return state

    @activity.defn(name=ActivityName.FINALIZE_ORDER)
    def finalize_order(self, request: FinalizeInput) -> AcmeOrderState:
        """Send the CSR once the order is ready; an order already finalizing is left alone."""
        account = self._clients.account(request.order.account)
        url = request.order.url
        order, response = _read(account, url, messages.Order.from_json, "read ACME order")
        state = order_state(url, order)
        if state.status is OrderState.PENDING:
            raise _not_yet("order is not ready for finalization yet", response)
        if state.status is not OrderState.READY:
            return state
        ready = messages.OrderResource(uri=url, body=order, csr_pem=request.csr_pem.encode())
        with acme_step("finalize ACME order"):
            finalized = account.client.begin_finalization(ready)
        return order_state(url, finalized.body)

    @activity.defn(name=ActivityName.AWAIT_ORDER)
    def await_order(self, order: AcmeResource) -> AcmeOrderState:
        """Return the order once the CA decided (valid/invalid); StillWaiting before."""
        account = self._clients.account(order.account)
        state, response = _read_order(account, order.url, "poll ACME order")
        if state.status in UNDECIDED_ORDER_STATES:
            raise _not_yet(f"ACME order is {state.status}", response)
        return state

    @activity.defn(name=ActivityName.DOWNLOAD_CERTIFICATE)
    def download_certificate(self, request: DownloadInput) -> str:
        """The PEM chain, choosing the preferred chain among alternates when configured."""
        certificate = request.certificate
        account = self._clients.account(certificate.account)
        response = _fetch(account, certificate.url, "download certificate")
        preferred = request.preferred_chain
        if not preferred:
            return response.text
        chains = [response.text] + [
            _fetch(account, url, "download certificate").text for url in alternate_links(response)
        ]
        for chain in chains:
            if top_issuer_common_name(chain) == preferred:
                return chain
        return chains[0]

    @activity.defn(name=ActivityName.DEACTIVATE_AUTHORIZATION)
    def deactivate_authorization(self, authorization: AcmeResource) -> None:
        """Give up a pending authorization after cancellation, where the CA allows it.

        Not when the account key is gone (its namespace deleted with the Issuer): then nobody
        can use the account again, and the CA expires the authorization on its own.
        """
        key = authorization.account.account_key
        if self._secrets.read(key) is None:
            activity.logger.info(
                "not deactivating %s: %s is gone; the CA expires it on its own",
                authorization.url,
                key.describe(),
            )
            return
        account = self._clients.account(authorization.account)
        polled, _ = _poll_authorization(account, authorization.url, "read authorization")
        if acme_status(polled.body.status, AuthorizationStatus) not in DEACTIVATABLE:
            return
        try:
            with acme_step("deactivate authorization"):
                account.client.deactivate_authorization(polled)
        except ApplicationError as error:
            if error.type != ACME_PROBLEM:
                raise
            activity.logger.info("CA refused to deactivate %s: %s", authorization.url, error)


def order_identifiers(order: messages.Order) -> set[tuple[str, str]]:
    return {(str(i.typ.name), str(i.value).lower()) for i in order.identifiers or ()}


MAX_LISTING_WALKS = 3
"""Walks of the orders list before the lookup settles for what it saw (see ``find_open_order``)."""


_LOOKUP_NONCE_TRIES = 5
"""Reads of one resource during the lookup before a badNonce run ends the attempt."""


def _looked_up(
    account: Account, url: str, parse: Callable[[Any], _Parsed], action: str
) -> tuple[_Parsed, requests.Response]:
    """One read of the lookup, which may be hundreds long: alive to Temporal, and a
    badNonce (Pebble refuses a share of nonces) costs that read, not the whole walk."""
    for tries_left in reversed(range(_LOOKUP_NONCE_TRIES)):
        if activity.in_activity():
            activity.heartbeat()
        try:
            return _read(account, url, parse, action)
        except ApplicationError as error:
            if error.type != BAD_NONCE or not tries_left:
                raise
    raise AssertionError("unreachable")


def listed_order_urls(account: Account) -> list[str]:
    """Every URL of the account's orders list, following each ``next`` page to the end."""
    # messages.Registration has no ``orders`` field: read the account as JSON.
    account_body, _ = _looked_up(account, account.uri, dict, "read ACME account")
    url = account_body.get("orders")
    pages: set[str] = set()
    order_urls: list[str] = []
    while url and str(url) not in pages:
        pages.add(str(url))
        listing, response = _looked_up(account, str(url), dict, "list ACME orders")
        order_urls += [str(u) for u in listing.get("orders", [])]
        url = response.links.get("next", {}).get("url")
    return order_urls


def is_ours(order: messages.Order, wanted: set[tuple[str, str]], profile: str) -> bool:
    """Open, for exactly ``wanted``, and not for another profile than the one we asked for.

    The protocol tells no more: an order carries no creator, no creation time and no
    client-chosen tag, so two open orders for the same names and profile on one account
    are indistinguishable until one is finalized with a CSR.
    """
    status = acme_status(order.status, OrderState)
    if status not in OPEN_ORDER_STATES or order_identifiers(order) != wanted:
        return False
    return not (profile and order.profile and order.profile != profile)


def find_open_order(
    account: Account, wanted: set[tuple[str, str]], *, profile: str = ""
) -> AcmeOrderState | None:
    """The newest open order of the account for exactly ``wanted``, however many it has.

    Every page of the orders list (RFC 8555 §7.1.2.1) is read, then the orders newest
    first: the RFC leaves the list's order open, Pebble appends, so the last is the newest.
    A list that changes while it is walked can shift an entry from one page to the one
    already read (Pebble drops invalid orders from it), so when nothing matches the list
    is walked again, and only orders not yet read are read, until a walk brings no new
    entry (at most ``MAX_LISTING_WALKS``: entries that keep appearing are orders created
    after ours).
    """
    seen: set[str] = set()
    for _ in range(MAX_LISTING_WALKS):
        unseen = [url for url in listed_order_urls(account) if url not in seen]
        if not unseen:
            return None
        for order_url in reversed(unseen):
            seen.add(order_url)
            order, _ = _looked_up(account, order_url, messages.Order.from_json, "read ACME order")
            if is_ours(order, wanted, profile):
                return order_state(order_url, order)
    return None
