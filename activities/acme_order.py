"""The ACME protocol steps of an order, each an idempotent activity.

Every step re-reads the order or authorization by URL before acting, so a step retried
on another worker after a crash continues from what the CA knows, not from memory.
"""

from __future__ import annotations

from typing import Any

from acme import challenges, messages
from acme import client as acme_client
from acme import errors as acme_errors
from cryptography import x509
from temporalio import activity
from temporalio.exceptions import ApplicationError

from acmeflow.activities.acme_client import Account, AcmeClients, generate_account_key
from acmeflow.activities.challenge_values import dns01_txt_value, key_authorization
from acmeflow.activities.csr import check_csr_matches, csr_identifiers
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
    ChallengeOffer,
    CheckRequestInput,
    CreateOrderInput,
    DownloadInput,
    FinalizeInput,
)
from acmeflow.contracts.errors import ACME_PROBLEM
from acmeflow.contracts.issuer import IssuerConfig
from acmeflow.contracts.states import ChallengeType


def _problem_text(problem: Any) -> str:
    if not isinstance(problem, dict):
        return ""
    code = str(problem.get("type", "")).rsplit(":", 1)[-1]
    detail = str(problem.get("detail", ""))
    return f"{code}: {detail}" if code else detail


def order_state(url: str, body: dict[str, Any]) -> AcmeOrderState:
    return AcmeOrderState(
        url=url,
        status=str(body.get("status", "")),
        finalize_url=str(body.get("finalize", "")),
        authorization_urls=[str(u) for u in body.get("authorizations", [])],
        certificate_url=str(body.get("certificate") or ""),
        problem=_problem_text(body.get("error")),
    )


def authorization_state(url: str, body: dict[str, Any], thumbprint: str) -> AuthorizationState:
    identifier = body.get("identifier", {})
    offers = []
    problems = []
    for challenge in body.get("challenges", []):
        ours = ChallengeType.from_acme_name(str(challenge.get("type")))
        if challenge.get("error"):
            problems.append(_problem_text(challenge["error"]))
        if ours is None:
            continue
        key_authz = key_authorization(str(challenge["token"]), thumbprint)
        offers.append(
            ChallengeOffer(
                url=str(challenge["url"]),
                type=ours,
                token=str(challenge["token"]),
                key=key_authz if ours == ChallengeType.HTTP01 else dns01_txt_value(key_authz),
                status=str(challenge.get("status", "pending")),
            )
        )
    return AuthorizationState(
        url=url,
        dns_name=str(identifier.get("value", "")),
        wildcard=bool(body.get("wildcard", False)),
        status=str(body.get("status", "")),
        challenges=offers,
        problem="; ".join(problems),
    )


def _post_as_get(account: Account, url: str, action: str) -> tuple[dict[str, Any], Any]:
    with acme_step(action):
        response = account.client._post_as_get(url)
    return dict(response.json()), response


class AcmeOrderActivities:
    """ACME steps sharing one cache of per-account clients; built once per worker."""

    def __init__(self, clients: AcmeClients, secrets: SecretStore) -> None:
        self._clients = clients
        self._secrets = secrets

    @activity.defn
    def check_request(self, request: CheckRequestInput) -> None:
        """Refuse a CSR that does not ask for exactly the order's names; no ACME call."""
        check_csr_matches(request.csr_pem, request.names)

    @activity.defn
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
            hmac_key = self._secrets.require(binding.key_secret, "EAB HMAC key").decode().strip()
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
            raise

    @activity.defn
    def create_order(self, request: CreateOrderInput) -> AcmeOrderState:
        """Create the ACME order once: a retry after a crash finds the first one.

        The order URL is recorded as heartbeat details the moment the CA answers. If a
        worker died before its answer arrived, the retry looks for an order of this account
        with exactly these identifiers still open (RFC 8555 §7.1.2.1 orders list) before
        creating another. CAs without an orders list (Let's Encrypt) leave that window
        open: at worst one extra pending order, which expires unused.
        """
        account = self._clients.account(request.account)
        created = activity.info().heartbeat_details
        if created:
            return self._reload_order(account, str(created[0]))
        dns_names, ips = csr_identifiers(request.csr_pem)
        wanted = {("dns", n.lower()) for n in dns_names} | {("ip", ip) for ip in ips}
        if activity.info().attempt > 1:
            found = find_open_order(account, wanted)
            if found is not None:
                activity.heartbeat(found.url)
                return found
        identifiers = [
            messages.Identifier(typ=messages.IDENTIFIER_FQDN, value=n) for n in dns_names
        ]
        identifiers += [messages.Identifier(typ=messages.IDENTIFIER_IP, value=ip) for ip in ips]
        new_order = messages.NewOrder(identifiers=identifiers, profile=request.profile or None)
        with acme_step("create ACME order"):
            response = account.client._post(account.client.directory["newOrder"], new_order)
        url = str(response.headers["Location"])
        activity.heartbeat(url)
        return order_state(url, dict(response.json()))

    @staticmethod
    def _reload_order(account: Account, url: str) -> AcmeOrderState:
        body, _ = _post_as_get(account, url, "reload ACME order")
        return order_state(url, body)

    @activity.defn
    def describe_authorization(self, resource: AcmeResource) -> AuthorizationState:
        account = self._clients.account(resource.account)
        body, _ = _post_as_get(account, resource.url, "read authorization")
        return authorization_state(resource.url, body, account.thumbprint)

    @activity.defn
    def accept_challenge(self, challenge: AcmeResource) -> None:
        """Tell the CA to validate; a challenge already past ``pending`` is left alone."""
        account = self._clients.account(challenge.account)
        body, _ = _post_as_get(account, challenge.url, "read challenge")
        if body.get("status") != "pending":
            return
        with acme_step("accept challenge"):
            account.client._post(challenge.url, challenges.HTTP01Response())

    @activity.defn
    def await_authorization(self, authorization: AcmeResource) -> AuthorizationState:
        """Return the authorization once final; raise StillWaiting (retried) before."""
        account = self._clients.account(authorization.account)
        body, response = _post_as_get(account, authorization.url, "poll authorization")
        state = authorization_state(authorization.url, body, account.thumbprint)
        if state.status == "pending":
            raise still_waiting(
                f"authorization for {state.dns_name} is still pending",
                retry_after_delay(response.headers.get("Retry-After")),
            )
        return state

    @activity.defn
    def finalize_order(self, request: FinalizeInput) -> AcmeOrderState:
        """Send the CSR once the order is ready; an order already finalizing is left alone."""
        account = self._clients.account(request.order.account)
        body, response = _post_as_get(account, request.order.url, "read ACME order")
        state = order_state(request.order.url, body)
        if state.status == "pending":
            raise still_waiting(
                "order is not ready for finalization yet",
                retry_after_delay(response.headers.get("Retry-After")),
            )
        if state.status != "ready":
            return state
        csr = x509.load_pem_x509_csr(request.csr_pem.encode())
        with acme_step("finalize ACME order"):
            finalized = account.client._post(
                state.finalize_url, messages.CertificateRequest(csr=csr)
            )
        return order_state(request.order.url, dict(finalized.json()))

    @activity.defn
    def await_order(self, order: AcmeResource) -> AcmeOrderState:
        """Return the order once the CA decided (valid/invalid); StillWaiting before."""
        account = self._clients.account(order.account)
        body, response = _post_as_get(account, order.url, "poll ACME order")
        state = order_state(order.url, body)
        if state.status in ("processing", "ready", "pending"):
            raise still_waiting(
                f"ACME order is {state.status}",
                retry_after_delay(response.headers.get("Retry-After")),
            )
        return state

    @activity.defn
    def download_certificate(self, request: DownloadInput) -> str:
        """The PEM chain, choosing the preferred chain among alternates when configured."""
        certificate = request.certificate
        account = self._clients.account(certificate.account)
        with acme_step("download certificate"):
            response = account.client._post_as_get(certificate.url)
            chains = [response.text]
            preferred = request.preferred_chain
            if preferred:
                for url in account.client._get_links(response, "alternate"):
                    chains.append(account.client._post_as_get(url).text)
        if not preferred:
            return chains[0]
        for chain in chains:
            if top_issuer_common_name(chain) == preferred:
                return chain
        return chains[0]

    @activity.defn
    def deactivate_authorization(self, authorization: AcmeResource) -> None:
        """Give up a pending authorization after cancellation, where the CA allows it."""
        account = self._clients.account(authorization.account)
        body, _ = _post_as_get(account, authorization.url, "read authorization")
        if body.get("status") not in ("pending", "valid"):
            return
        try:
            with acme_step("deactivate authorization"):
                account.client._post(
                    authorization.url, messages.UpdateAuthorization(status="deactivated")
                )
        except ApplicationError as error:
            if error.type != ACME_PROBLEM:
                raise
            activity.logger.info("CA refused to deactivate %s: %s", authorization.url, error)


def order_identifiers(body: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (str(i.get("type")), str(i.get("value", "")).lower()) for i in body.get("identifiers", [])
    }


def find_open_order(
    account: Account, wanted: set[tuple[str, str]], newest: int = 20
) -> AcmeOrderState | None:
    """The newest pending/ready order of the account for exactly ``wanted``, if listed."""
    account_body, _ = _post_as_get(account, account.uri, "read ACME account")
    url = account_body.get("orders")
    order_urls: list[str] = []
    while url:
        listing, response = _post_as_get(account, str(url), "list ACME orders")
        order_urls += [str(u) for u in listing.get("orders", [])]
        url = response.links.get("next", {}).get("url")
    for order_url in reversed(order_urls[-newest:]):
        body, _ = _post_as_get(account, order_url, "read ACME order")
        if body.get("status") in ("pending", "ready") and order_identifiers(body) == wanted:
            return order_state(order_url, body)
    return None


def top_issuer_common_name(chain_pem: str) -> str:
    """Common name of the issuer of the chain's last certificate (cert-manager's rule)."""
    certs = x509.load_pem_x509_certificates(chain_pem.encode())
    if not certs:
        return ""
    names = certs[-1].issuer.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""
