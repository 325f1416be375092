"""ACME clients built from an issuer's configuration, one per account, reused by threads.

The ``acme`` package drops ``Retry-After`` from error responses; the network class here
keeps it on the problem so a ``rateLimited`` answer waits as long as the CA asked.
"""

from __future__ import annotations

import hashlib
import tempfile
import threading
import time
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

from acmeflow.activities.errors import acme_step, bad_request, retry_after_delay
from acmeflow.activities.secret_refs import SecretStore
from acmeflow.contracts.issuer import AccountRef, IssuerConfig
from acmeflow.contracts.secrets import SecretRef

USER_AGENT = "acmeflow/0.1"
NETWORK_TIMEOUT_S = 15
ACCOUNT_MEMORY_S = 3600.0


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
        self._directories: dict[str, messages.Directory] = {}

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

    def directory(self, issuer: CaEndpoint, net: RetryAfterNetwork) -> messages.Directory:
        with self._lock:
            cached = self._directories.get(issuer.server)
        if cached is not None:
            return cached
        with acme_step(f"fetch ACME directory {issuer.server}"):
            directory = acme_client.ClientV2.get_directory(issuer.server, net)
        with self._lock:
            self._directories[issuer.server] = directory
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
        thumbprint = b64encode(key.public_key().thumbprint()).decode()
        account = Account(client=client, uri=account_uri, thumbprint=thumbprint)
        with self._lock:
            self._accounts[cache_key] = account
        return account
