"""The Kubernetes side of a Certificate: its key, its Order resource, its TLS Secret.

The private key is generated here and goes straight into a Secret; the workflow only
ever sees the CSR and the Secret's name. Every step is idempotent: the next key lives in
a Secret with a fixed name, the Order's name derives from the CSR, and the TLS Secret is
written in place (never deleted), so a renewal never leaves it missing.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pydantic
from cryptography import x509
from kubernetes import client
from temporalio import activity
from temporalio.exceptions import ApplicationError

from acmeflow.activities.csr import (
    PrivateKey,
    build_csr,
    generate_private_key,
    key_matches,
    load_private_key,
    private_key_pem,
)
from acmeflow.activities.errors import bad_request
from acmeflow.activities.kubernetes_api import (
    MERGE_PATCH,
    OPAQUE_SECRET_TYPE,
    REQUEST_TIMEOUT,
    Permission,
    call_api,
    call_api_or_none,
    core_owner_reference,
    managed_secret,
)
from acmeflow.activities.secret_inspection import (
    ari_certificate_id,
    inspect_key_pair,
    iso,
    issued_by_another_issuer,
    public_bytes,
    secret_missing,
)
from acmeflow.activities.tls_secret_contents import (
    DATA_KEYS,
    ISSUER_ANNOTATION,
    TlsSecretContents,
    certificate_label,
    stale_metadata,
    tls_secret_contents,
)
from acmeflow.contracts.activities import ActivityName
from acmeflow.contracts.certificate import (
    CERTIFICATE_ANNOTATION,
    CertificateRef,
    KeyRequest,
    OrderResourceRef,
    OrderResourceRequest,
    PreparedKey,
    RotationPolicy,
    SecretInspection,
    StoreRequest,
)
from acmeflow.crds import models as crd
from acmeflow.crds.order_requests import csr_identifiers, order_name

__all__ = ["ISSUER_ANNOTATION", "CertificateActivities", "certificate_label"]

TLS_SECRET_TYPE = "kubernetes.io/tls"
CERTIFICATE_LABEL = "acmeflow.io/certificate"
REVISION_ANNOTATION = "acmeflow.io/certificate-revision"
"""On an Order: the Certificate revision it was created for (revisionHistoryLimit reads it)."""


def next_key_secret_name(certificate: str) -> str:
    return f"{certificate}-next-private-key"[:253]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _data(secret: client.V1Secret | None, key: str) -> bytes | None:
    value = (secret.data or {}).get(key) if secret is not None else None
    return base64.b64decode(value) if value else None


def _annotation(secret: client.V1Secret, key: str) -> str | None:
    annotations: dict[str, str] = secret.metadata.annotations or {}
    return annotations.get(key)


def _owner(certificate: CertificateRef) -> crd.OwnerReference:
    """The Certificate as controller of what it leads to: deleting it deletes them."""
    return crd.OwnerReference(
        api_version=crd.API_VERSION,
        kind=crd.Certificate.KIND,
        name=certificate.name,
        uid=certificate.uid,
        controller=True,
        block_owner_deletion=True,
    )


def order_resource(request: OrderResourceRequest) -> crd.Order:
    """The Order for this CSR: its identifiers as the Certificate states them, else the CSR's."""
    ref = request.certificate
    dns_names, ips = csr_identifiers(request.csr_pem)
    name = order_name(ref.name, request.csr_pem, request.revision)
    try:
        return crd.Order(
            metadata=crd.ObjectMeta(
                name=name,
                namespace=ref.namespace,
                labels={**request.labels, CERTIFICATE_LABEL: certificate_label(ref.name)},
                annotations={REVISION_ANNOTATION: str(request.revision)},
                owner_references=[_owner(ref)],
            ),
            spec=crd.OrderSpec(
                request=request.csr_pem,
                issuer_ref=crd.IssuerRef.model_validate(request.issuer_ref),
                common_name=request.names.common_name or None,
                dns_names=request.names.dns_names or dns_names,
                ip_addresses=request.names.ip_addresses or ips,
                duration=request.duration or None,
            ),
        )
    except pydantic.ValidationError as error:
        raise bad_request(f"Order {name} would not be a valid Order: {error}") from error


class CertificateActivities:
    """Steps of a Certificate that touch the cluster; one instance per worker."""

    def __init__(self, api_client: client.ApiClient) -> None:
        self._core = client.CoreV1Api(api_client)
        self._custom = client.CustomObjectsApi(api_client)

    def _secret(self, namespace: str, name: str) -> client.V1Secret | None:
        return call_api_or_none(
            lambda: self._core.read_namespaced_secret(
                name, namespace, _request_timeout=REQUEST_TIMEOUT
            ),
            none_on=(404,),
            action=f"read Secret {namespace}/{name}",
            permission=Permission("get", "secrets", namespace),
        )

    @activity.defn(name=ActivityName.INSPECT_CERTIFICATE_SECRET)
    def inspect_certificate_secret(self, request: KeyRequest) -> SecretInspection:
        """Whether the TLS Secret already holds a certificate for exactly these names."""
        ref = request.certificate
        secret = self._secret(ref.namespace, request.secret_name)
        if secret is None:
            return secret_missing(request.secret_name)
        owner = _annotation(secret, CERTIFICATE_ANNOTATION)
        if owner and owner != ref.name:
            return SecretInspection(
                False,
                conflict=(
                    f'Secret "{request.secret_name}" already holds the certificate of Certificate '
                    f'"{owner}"; choose another secretName'
                ),
            )
        moved = issued_by_another_issuer(secret.metadata.annotations or {}, request.issuer_ref)
        if moved is not None:
            return moved
        return inspect_key_pair(
            _data(secret, "tls.crt"), _data(secret, "tls.key"), request.names, now=datetime.now(UTC)
        )

    @activity.defn(name=ActivityName.PREPARE_PRIVATE_KEY)
    def prepare_private_key(self, request: KeyRequest) -> PreparedKey:
        """Find or make the key for the next certificate; return its CSR, never the key."""
        ref = request.certificate
        key: PrivateKey | None = None
        key_secret = next_key_secret_name(ref.name)
        generated = True
        if request.rotation_policy == RotationPolicy.NEVER:
            current = _data(self._secret(ref.namespace, request.secret_name), "tls.key")
            kept = load_private_key(current) if current else None
            if kept is not None and self._wanted(kept, request):
                key, key_secret, generated = kept, request.secret_name, False
        if key is None:
            stored = _data(self._secret(ref.namespace, key_secret), "tls.key")
            key = load_private_key(stored) if stored else None
            if key is None or not self._wanted(key, request):
                if key is not None:  # made for an earlier privateKey (say Ed25519, refused)
                    self._delete_secret(ref.namespace, key_secret)
                key = self._store_new_key(request, key_secret)
        return PreparedKey(
            csr_pem=build_csr(key, request.names), key_secret=key_secret, generated=generated
        )

    @staticmethod
    def _wanted(key: PrivateKey, request: KeyRequest) -> bool:
        return key_matches(key, algorithm=request.algorithm, size=request.size)

    def _delete_secret(self, namespace: str, name: str) -> None:
        call_api_or_none(
            lambda: self._core.delete_namespaced_secret(
                name, namespace, _request_timeout=REQUEST_TIMEOUT
            ),
            none_on=(404,),
            action=f"delete Secret {name}",
            permission=Permission("delete", "secrets", namespace),
        )

    def _store_new_key(self, request: KeyRequest, name: str) -> PrivateKey:
        key = generate_private_key(request.algorithm, request.size)
        ref = request.certificate
        body = managed_secret(
            name=name,
            namespace=ref.namespace,
            secret_type=OPAQUE_SECRET_TYPE,
            annotations={CERTIFICATE_ANNOTATION: ref.name},
            data={"tls.key": _b64(private_key_pem(key, encoding=request.encoding))},
            owner=core_owner_reference(_owner(ref)),
        )
        created = call_api_or_none(
            lambda: self._core.create_namespaced_secret(
                ref.namespace, body, _request_timeout=REQUEST_TIMEOUT
            ),
            none_on=(409,),
            action=f"store the next private key in {name}",
            permission=Permission("create", "secrets", ref.namespace),
        )
        if created is None:  # another attempt stored one first: use that
            stored = _data(self._secret(ref.namespace, name), "tls.key")
            if stored:
                return load_private_key(stored)
        return key

    @activity.defn(name=ActivityName.CREATE_ORDER_RESOURCE)
    def create_order_resource(self, request: OrderResourceRequest) -> OrderResourceRef:
        """The Order for this CSR, owned by the Certificate; created once."""
        order = order_resource(request)
        namespace, name = request.certificate.namespace, order.metadata.name
        where = (crd.GROUP, crd.VERSION, namespace, crd.Order.PLURAL)
        created = call_api_or_none(
            lambda: self._custom.create_namespaced_custom_object(
                *where, order.to_api(), _request_timeout=REQUEST_TIMEOUT
            ),
            none_on=(409,),
            action=f"create Order {name}",
            permission=Permission("create", crd.Order.PLURAL, namespace, crd.GROUP),
        ) or call_api(
            lambda: self._custom.get_namespaced_custom_object(
                *where, name, _request_timeout=REQUEST_TIMEOUT
            ),
            action=f"read Order {name}",
            permission=Permission("get", crd.Order.PLURAL, namespace, crd.GROUP),
        )
        stored = crd.ObjectMeta.model_validate(created["metadata"])
        return OrderResourceRef(name=name, uid=str(stored.uid))

    @activity.defn(name=ActivityName.STORE_CERTIFICATE)
    def store_certificate(self, request: StoreRequest) -> SecretInspection:
        """Write the key pair into the TLS Secret in place; then drop the next-key Secret.

        A retry after a worker died between the two finds the next-key Secret gone and
        the TLS Secret already holding this chain: that is this step done, not a failure.
        """
        ref = request.certificate
        key_pem = _data(self._secret(ref.namespace, request.key_secret), "tls.key")
        if key_pem is None and request.key_secret != request.secret_name:
            tls = self._secret(ref.namespace, request.secret_name)
            if _data(tls, "tls.crt") == request.chain_pem.encode():
                key_pem = _data(tls, "tls.key")
        if key_pem is None:
            raise bad_request(
                f"the private key Secret {request.key_secret} vanished before "
                "the certificate arrived; the next attempt generates a new key"
            )
        cert = x509.load_pem_x509_certificates(request.chain_pem.encode())[0]
        key = load_private_key(key_pem)
        if public_bytes(cert.public_key()) != public_bytes(key.public_key()):
            raise bad_request("the issued certificate does not match the private key")
        contents = tls_secret_contents(request, key=key, chain_pem=request.chain_pem.encode())
        self._write_tls_secret(request, contents)
        if request.key_secret != request.secret_name:
            self._delete_secret(ref.namespace, request.key_secret)
        return SecretInspection(
            True,
            not_before=iso(cert.not_valid_before_utc),
            not_after=iso(cert.not_valid_after_utc),
            certificate_id=ari_certificate_id(cert),
        )

    @activity.defn(name=ActivityName.REFRESH_TLS_SECRET)
    def refresh_tls_secret(self, request: StoreRequest) -> bool:
        """Bring a good TLS Secret's labels, annotations, encoding and output formats in
        line with the Certificate, without a new certificate; True if it had to be written.

        ``request.chain_pem`` and ``key_secret`` are not used: the Secret's own pair is.
        Anything not a good pair of this Certificate's is left for the next issuance.
        """
        ref = request.certificate
        existing = self._secret(ref.namespace, request.secret_name)
        if existing is None or _annotation(existing, CERTIFICATE_ANNOTATION) != ref.name:
            return False
        chain_pem, key_pem = _data(existing, "tls.crt"), _data(existing, "tls.key")
        try:
            key = load_private_key(key_pem or b"")
            leaf = x509.load_pem_x509_certificates(chain_pem or b"")[0]
            contents = tls_secret_contents(request, key=key, chain_pem=chain_pem or b"")
        except (ValueError, TypeError, ApplicationError):
            return False
        if public_bytes(leaf.public_key()) != public_bytes(key.public_key()):
            return False  # changed since it was inspected: the next look says so
        if _holds(existing, contents):
            return False
        self._write_tls_secret(request, contents)
        return True

    def _write_tls_secret(self, request: StoreRequest, contents: TlsSecretContents) -> None:
        """Create the TLS Secret, or update it in place unless another Certificate owns it.

        Either way it carries ``TLS_SECRET_LABEL``, which the bridge watches to notice a
        user deleting or editing it (one written before the label existed gets it now).
        A data key acmeflow wrote before and does not write now (an output format turned
        off) is removed.
        """
        ref = request.certificate
        data = {key: _b64(value) for key, value in contents.data.items()}
        existing = self._secret(ref.namespace, request.secret_name)
        permission = Permission("update", "secrets", ref.namespace)
        if existing is None:
            body = managed_secret(
                name=request.secret_name,
                namespace=ref.namespace,
                secret_type=TLS_SECRET_TYPE,
                annotations=contents.annotations,
                data=data,
            )
            body.metadata.labels = contents.labels
            call_api(
                lambda: self._core.create_namespaced_secret(
                    ref.namespace, body, _request_timeout=REQUEST_TIMEOUT
                ),
                action=f"create Secret {request.secret_name}",
                permission=permission,
            )
            return
        owner = _annotation(existing, CERTIFICATE_ANNOTATION)
        if owner and owner != ref.name:
            raise bad_request(
                f'Secret "{request.secret_name}" belongs to Certificate '
                f'"{owner}"; not overwriting it'
            )
        dropped = {key: None for key in DATA_KEYS if key in (existing.data or {})}
        stale_labels, stale_annotations = stale_metadata(
            existing.metadata.labels or {}, existing.metadata.annotations or {}, contents
        )
        # A merge patch carrying the resourceVersion read: refused if the Secret changed since.
        # A plain dict, since only JSON's null removes a key (the client's model has no None).
        patch = {
            "metadata": {
                "labels": {**dict.fromkeys(stale_labels), **contents.labels},
                "annotations": {**dict.fromkeys(stale_annotations), **contents.annotations},
                "resourceVersion": existing.metadata.resource_version,
            },
            "data": {**dropped, **data},
        }
        call_api(
            lambda: self._core.patch_namespaced_secret(
                request.secret_name,
                ref.namespace,
                patch,
                _content_type=MERGE_PATCH,
                _request_timeout=REQUEST_TIMEOUT,
            ),
            action=f"update Secret {request.secret_name}",
            permission=permission,
        )


def _holds(secret: client.V1Secret, contents: TlsSecretContents) -> bool:
    """Whether the Secret already has exactly this data (of acmeflow's keys), carries these
    labels and annotations, and none an earlier ``secretTemplate`` left behind."""
    data = {key: _data(secret, key) for key in DATA_KEYS if _data(secret, key) is not None}
    labels: dict[str, str] = secret.metadata.labels or {}
    annotations: dict[str, str] = secret.metadata.annotations or {}
    return (
        data == contents.data
        and contents.labels.items() <= labels.items()
        and contents.annotations.items() <= annotations.items()
        and stale_metadata(labels, annotations, contents) == ([], [])
    )
