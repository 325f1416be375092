"""The Kubernetes side of a Certificate: its key, its Order resource, its TLS Secret.

The private key is generated here and goes straight into a Secret; the workflow only
ever sees the CSR and the Secret's name. Every step is idempotent: the next key lives in
a Secret with a fixed name, the Order's name derives from the CSR, and the TLS Secret is
written in place (never deleted), so a renewal never leaves it missing.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime

import pydantic
from cryptography import x509
from kubernetes import client
from temporalio import activity

from acmeflow.activities.csr import (
    PrivateKey,
    build_csr,
    generate_private_key,
    load_private_key,
    private_key_pem,
)
from acmeflow.activities.errors import bad_request
from acmeflow.activities.kubernetes_api import (
    MANAGED_LABEL,
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
    inspect_key_pair,
    iso,
    public_bytes,
    secret_missing,
)
from acmeflow.contracts.activities import ActivityName
from acmeflow.contracts.certificate import (
    CERTIFICATE_ANNOTATION,
    TLS_SECRET_LABEL,
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

ISSUER_ANNOTATION = "acmeflow.io/issuer-name"
TLS_SECRET_TYPE = "kubernetes.io/tls"
CERTIFICATE_LABEL = "acmeflow.io/certificate"


def certificate_label(certificate: str) -> str:
    """The Certificate's name as a label value (at most 63 characters, unique when cut);
    names may be 253 characters long, label values no more than 63."""
    if len(certificate) <= 63:
        return certificate
    return f"{certificate[:52]}-{hashlib.sha256(certificate.encode()).hexdigest()[:10]}"


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
            if current:
                key, key_secret, generated = load_private_key(current), request.secret_name, False
        if key is None:
            stored = _data(self._secret(ref.namespace, key_secret), "tls.key")
            key = load_private_key(stored) if stored else self._store_new_key(request, key_secret)
        return PreparedKey(
            csr_pem=build_csr(key, request.names), key_secret=key_secret, generated=generated
        )

    def _store_new_key(self, request: KeyRequest, name: str) -> PrivateKey:
        key = generate_private_key(request.algorithm, request.size)
        ref = request.certificate
        body = managed_secret(
            name=name,
            namespace=ref.namespace,
            secret_type=OPAQUE_SECRET_TYPE,
            annotations={CERTIFICATE_ANNOTATION: ref.name},
            data={"tls.key": _b64(private_key_pem(key))},
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
        if public_bytes(cert.public_key()) != public_bytes(load_private_key(key_pem).public_key()):
            raise bad_request("the issued certificate does not match the private key")
        self._write_tls_secret(
            request,
            data={"tls.crt": _b64(request.chain_pem.encode()), "tls.key": _b64(key_pem)},
        )
        if request.key_secret != request.secret_name:
            call_api_or_none(
                lambda: self._core.delete_namespaced_secret(
                    request.key_secret, ref.namespace, _request_timeout=REQUEST_TIMEOUT
                ),
                none_on=(404,),
                action=f"delete Secret {request.key_secret}",
                permission=Permission("delete", "secrets", ref.namespace),
            )
        return SecretInspection(
            True,
            not_before=iso(cert.not_valid_before_utc),
            not_after=iso(cert.not_valid_after_utc),
        )

    def _write_tls_secret(self, request: StoreRequest, *, data: dict[str, str]) -> None:
        """Create the TLS Secret, or update it in place unless another Certificate owns it.

        Either way it carries ``TLS_SECRET_LABEL``, which the bridge watches to notice a
        user deleting or editing it (one written before the label existed gets it now).
        """
        ref = request.certificate
        annotations = {CERTIFICATE_ANNOTATION: ref.name, ISSUER_ANNOTATION: request.issuer_name}
        labels = {MANAGED_LABEL: "true", TLS_SECRET_LABEL: certificate_label(ref.name)}
        existing = self._secret(ref.namespace, request.secret_name)
        permission = Permission("update", "secrets", ref.namespace)
        if existing is None:
            body = managed_secret(
                name=request.secret_name,
                namespace=ref.namespace,
                secret_type=TLS_SECRET_TYPE,
                annotations=annotations,
                data=data,
            )
            body.metadata.labels = labels
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
        # A merge patch carrying the resourceVersion read: refused if the Secret changed since.
        patch = client.V1Secret(
            metadata=client.V1ObjectMeta(
                labels={TLS_SECRET_LABEL: labels[TLS_SECRET_LABEL]},
                annotations=annotations,
                resource_version=existing.metadata.resource_version,
            ),
            data=data,
        )
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
