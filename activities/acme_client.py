"""ACME clients built from an issuer's configuration, one per account, reused by threads.

The ``acme`` package drops ``Retry-After`` from error responses; the network class here
keeps it on the problem so a ``rateLimited`` answer waits as long as the CA asked.
"""

from __future__ import annotations

import hashlib
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import requests
from acme import client as acme_client
from acme import messages
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from josepy.b64 import b64encode
from josepy.jwa import ES256, ES384, RS256, JWASignature
from josepy.jwk import JWK, JWKEC, JWKRSA
from requests.adapters import HTTPAdapter

from acmeflow.activities.acme_directory import fetch_directory
from acmeflow.activities.errors import bad_request, retry_after_delay
from acmeflow.activities.secret_refs import SecretStore
from acmeflow.contracts.issuer import AccountRef, IssuerConfig
from acmeflow.contracts.secrets import SecretRef

USER_AGENT = "acmeflow/0.1"
NETWORK_TIMEOUT_S = 5
"""Connect and read timeout of one HTTP request to the CA: well inside an Order step's
10 s attempt, so a stalled CA is a retryable error before Temporal's own timeout."""
ACCOUNT_MEMORY_S = 3600.0
ACCOUNT_GONE = "accountDoesNotExist"


class RetryAfterNetwork(acme_client.ClientNetwork):
    """A ClientNetwork whose problem documents remember the response's Retry-After."""

    @classmethod
    def _check_response(
        cls, response: requests.Response, content_type: str | None = None
    ) -> requests.Response:
        try:
            return super()._check_response(response, content_type=content_type)
        except messages.Error as problem:
            problem.retry_after = retry_after_delay(response.headers.get("Retry-After"))
            raise

    on_account_gone: Callable[[str], None] | None = None
    """Told the account URL when the CA answers accountDoesNotExist (see ``post``)."""

    def post(self, *args: Any, **kwargs: Any) -> requests.Response:
        """POST; a CA that no longer knows the account makes the worker forget it too.

        A CA that lost its data (a restarted Pebble forgets everything) or deactivated the
        account answers every request with accountDoesNotExist. The order in flight cannot
        go on, but the next one must register again instead of reusing the remembered URL.
        """
        try:
            return super().post(*args, **kwargs)
        except messages.Error as problem:
            if problem.code != ACCOUNT_GONE or self.account is None:
                raise
            if self.on_account_gone is not None:
                self.on_account_gone(self.account.uri)
            raise problem.update(
                detail=f"{problem.detail} The CA no longer knows this account (it was "
                "deactivated, or the CA lost its data, as a restarted Pebble does); "
                "acmeflow registers the account again for the next order"
            ) from problem


def generate_account_key() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def jwk_from_pem(pem: bytes) -> tuple[JWK, JWASignature]:
    """The JWK and signing algorithm for an RSA or ECDSA (P-256/P-384) account key."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except ValueError as error:
        raise bad_request(f"account key is not a PEM private key: {error}") from error
    if isinstance(key, rsa.RSAPrivateKey):
        return JWKRSA(key=key), RS256
    if isinstance(key, ec.EllipticCurvePrivateKey):
        algorithms = {"secp256r1": ES256, "secp384r1": ES384}
        if key.curve.name not in algorithms:
            raise bad_request(f"unsupported account key curve {key.curve.name}")
        return JWKEC(key=key), algorithms[key.curve.name]
    raise bad_request(f"unsupported account key type {type(key).__name__}")


def key_thumbprint(key: JWK) -> str:
    """The RFC 7638 thumbprint of the account key's public half (base64url), as the key
    authorization of every challenge carries it: public, and the same for the same key."""
    return b64encode(key.public_key().thumbprint()).decode()


@dataclass(frozen=True)
class Account:
    """A ready client for one ACME account, and the account's public facts."""

    client: acme_client.ClientV2
    uri: str
    thumbprint: str


class CaEndpoint(Protocol):
    """Where the CA is, which account key speaks to it, and how to trust it.

    Both an ``IssuerConfig`` (at registration) and an ``AccountRef`` (every later step) are one.
    """

    @property
    def server(self) -> str: ...
    @property
    def account_key(self) -> SecretRef: ...
    @property
    def skip_tls_verify(self) -> bool: ...
    @property
    def ca_bundle_pem(self) -> str: ...


class AcmeClients:
    """Builds and caches clients; keys are read through the secret store, never passed in."""

    def __init__(
        self,
        secrets: SecretStore,
        *,
        network_timeout: int = NETWORK_TIMEOUT_S,
        pool_size: int = 32,
    ) -> None:
        self._secrets = secrets
        self._timeout = network_timeout
        self._lock = threading.Lock()
        self._accounts: dict[tuple[str, str, str], Account] = {}
        self._registered: dict[tuple[str, ...], tuple[str, float]] = {}
        self._pool_size = pool_size
        self._directories: dict[tuple[str, str], messages.Directory] = {}

    def _verify(self, issuer: CaEndpoint) -> bool | str:
        if issuer.skip_tls_verify:
            return False
        if not issuer.ca_bundle_pem:
            return True
        digest = hashlib.sha256(issuer.ca_bundle_pem.encode()).hexdigest()[:16]
        path = Path(tempfile.gettempdir()) / f"acmeflow-ca-{digest}.pem"
        if not path.exists():
            path.write_text(issuer.ca_bundle_pem)
        return str(path)

    def network(
        self, issuer: CaEndpoint, key: JWK, alg: JWASignature, account_uri: str | None = None
    ) -> RetryAfterNetwork:
        account = (
            messages.RegistrationResource(uri=account_uri, body=messages.Registration())
            if account_uri
            else None
        )
        # requests takes a CA bundle path where ``acme`` declares a bool.
        verify: Any = self._verify(issuer)
        net = RetryAfterNetwork(
            key,
            account=account,
            alg=alg,
            verify_ssl=verify,
            user_agent=USER_AGENT,
            timeout=self._timeout,
        )
        net.on_account_gone = self.forget_account
        # One client serves every thread of the worker; requests' default pool keeps 10.
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=self._pool_size)
        net.session.mount("https://", adapter)
        net.session.mount("http://", adapter)
        return net

    def _account_cache_key(self, issuer: IssuerConfig, key_pem: bytes) -> tuple[str, ...]:
        binding = issuer.external_account_binding
        return (
            issuer.server,
            issuer.email,
            binding.key_id if binding else "",
            hashlib.sha256(key_pem).hexdigest(),
        )

    def remembered_account(self, issuer: IssuerConfig, key_pem: bytes) -> str:
        """The account URL registered for this very key recently, else empty."""
        with self._lock:
            entry = self._registered.get(self._account_cache_key(issuer, key_pem))
        if entry is None or entry[1] < time.monotonic():
            return ""
        return entry[0]

    def remember_account(self, issuer: IssuerConfig, key_pem: bytes, uri: str) -> None:
        with self._lock:
            self._registered[self._account_cache_key(issuer, key_pem)] = (
                uri,
                time.monotonic() + ACCOUNT_MEMORY_S,
            )

    def forget_account(self, uri: str) -> None:
        """The CA no longer knows ``uri``: the next ensure_account registers again."""
        with self._lock:
            for key in [k for k, (known, _) in self._registered.items() if known == uri]:
                del self._registered[key]
            for key in [k for k in self._accounts if k[2] == uri]:
                del self._accounts[key]

    def directory(self, issuer: CaEndpoint, net: RetryAfterNetwork) -> messages.Directory:
        # Keyed by how the CA is trusted too: an issuer without the CA bundle must meet the
        # untrusted certificate itself (fetch_directory says so), not reuse another's fetch.
        cache_key = (issuer.server, str(self._verify(issuer)))
        with self._lock:
            cached = self._directories.get(cache_key)
        if cached is not None:
            return cached
        directory = fetch_directory(issuer.server, net)
        with self._lock:
            self._directories[cache_key] = directory
        return directory

    def account_key(self, issuer: CaEndpoint) -> tuple[JWK, JWASignature]:
        pem = self._secrets.require(issuer.account_key, f"ACME account key for {issuer.server}")
        return jwk_from_pem(pem)

    def account(self, ref: AccountRef) -> Account:
        """The cached client for an account registered earlier (by ``ensure_account``)."""
        account_uri = ref.account_uri
        cache_key = (ref.server, ref.account_key.describe(), account_uri)
        with self._lock:
            cached = self._accounts.get(cache_key)
        if cached is not None:
            return cached
        key, alg = self.account_key(ref)
        net = self.network(ref, key, alg, account_uri)
        client = acme_client.ClientV2(self.directory(ref, net), net)
        account = Account(client=client, uri=account_uri, thumbprint=key_thumbprint(key))
        with self._lock:
            self._accounts[cache_key] = account
        return account
