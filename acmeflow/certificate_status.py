"""What ``acmeflow status certificate`` knows about one Certificate, gathered before it is
printed: the resources from Kubernetes, the workflows from Temporal.

Gathering and printing are apart so that each source's failure (no Secret yet, Temporal
unreachable) is a fact the screen shows, not an exception that hides the rest.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cryptography import x509
from kubernetes import client
from temporalio.client import Client, WorkflowQueryFailedError
from temporalio.service import RPCError, RPCStatusCode

from acmeflow.contracts.progress import ChallengeProgress
from acmeflow.crds import models as crd
from acmeflow.operator_access import (
    ClusterReader,
    OperatorError,
    OperatorSettings,
    connect_temporal,
)
from acmeflow.workflows.order import OrderWorkflow
from acmeflow.workflows.resource_ids import order_workflow_id, workflow_id

_NEVER = datetime(1970, 1, 1, tzinfo=UTC)
TEMPORAL_TIMEOUT = timedelta(seconds=5)
"""How long one Temporal call may take before the screen says Temporal did not answer."""


@dataclass(frozen=True)
class StoredCertificate:
    """The certificate in the Secret's ``tls.crt`` (its first, the leaf), or why not."""

    problem: str = ""
    subject: str = ""
    issuer: str = ""
    dns_names: tuple[str, ...] = ()
    ip_addresses: tuple[str, ...] = ()
    not_before: str = ""
    not_after: str = ""
    serial: str = ""


@dataclass(frozen=True)
class WorkflowFacts:
    """One workflow as Temporal reports it: its status, or why that is unknown."""

    workflow_id: str
    status: str = ""
    problem: str = ""


@dataclass
class CertificateStatusReport:
    certificate: crd.Certificate
    issuer: crd.Issuer | crd.ClusterIssuer | None
    issuer_problem: str
    secret: StoredCertificate
    events: list[client.CoreV1Event]
    order: crd.Order | None
    challenges: list[crd.Challenge]
    workflows: list[WorkflowFacts] = field(default_factory=list)
    deleted_challenges: list[ChallengeProgress] = field(default_factory=list)
    """The Order's challenges that have no resource any more (a valid Challenge is deleted
    once cleaned up), as the Order's workflow tells them."""


def stored_certificate(secret: client.V1Secret | None, secret_name: str) -> StoredCertificate:
    if secret is None:
        return StoredCertificate(problem=f'Secret "{secret_name}" does not exist yet')
    pem = (secret.data or {}).get("tls.crt")
    if not pem:
        return StoredCertificate(problem=f'Secret "{secret_name}" has no tls.crt')
    try:
        leaf = x509.load_pem_x509_certificates(base64.b64decode(pem))[0]
    except ValueError as error:
        return StoredCertificate(problem=f"tls.crt is not a PEM certificate: {error}")
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns_names = tuple(san.get_values_for_type(x509.DNSName))
        ips = tuple(str(ip) for ip in san.get_values_for_type(x509.IPAddress))
    except x509.ExtensionNotFound:
        dns_names, ips = (), ()
    return StoredCertificate(
        subject=leaf.subject.rfc4514_string(),
        issuer=leaf.issuer.rfc4514_string(),
        dns_names=dns_names,
        ip_addresses=ips,
        not_before=leaf.not_valid_before_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
        not_after=leaf.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
        serial=f"{leaf.serial_number:x}",
    )


def _issuer(
    reader: ClusterReader, certificate: crd.Certificate
) -> tuple[crd.Issuer | crd.ClusterIssuer | None, str]:
    ref = certificate.spec.issuer_ref
    try:
        if ref.kind == crd.ClusterIssuer.KIND:
            return reader.get_cluster(crd.ClusterIssuer, ref.name), ""
        return reader.get(crd.Issuer, certificate.metadata.namespace or "", ref.name), ""
    except OperatorError as missing:
        return None, str(missing)


def current_order(orders: list[crd.Order], certificate: crd.Certificate) -> crd.Order | None:
    """The newest Order the Certificate owns: the one of its latest issuance."""
    owned = [
        order
        for order in orders
        if any(ref.uid == certificate.metadata.uid for ref in order.metadata.owner_references or [])
    ]
    if not owned:
        return None
    return max(
        owned,
        key=lambda o: (o.metadata.creation_timestamp or _NEVER, o.metadata.name),
    )


def gather_from_cluster(
    reader: ClusterReader, namespace: str, name: str
) -> CertificateStatusReport:
    certificate = reader.get(crd.Certificate, namespace, name)
    issuer, issuer_problem = _issuer(reader, certificate)
    secret_name = certificate.spec.secret_name
    order = current_order(reader.objects(crd.Order, namespace), certificate)
    challenges = (
        reader.objects(
            crd.Challenge, namespace, label_selector=f"acmeflow.io/order={order.metadata.name}"
        )
        if order is not None
        else []
    )
    return CertificateStatusReport(
        certificate=certificate,
        issuer=issuer,
        issuer_problem=issuer_problem,
        secret=stored_certificate(reader.secret(namespace, secret_name), secret_name),
        events=reader.events_of(namespace, certificate.metadata.uid or ""),
        order=order,
        challenges=sorted(challenges, key=lambda c: c.metadata.name),
    )


async def _describe(temporal: Client, id_: str) -> WorkflowFacts:
    try:
        described = await temporal.get_workflow_handle(id_).describe(rpc_timeout=TEMPORAL_TIMEOUT)
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return WorkflowFacts(id_, problem="no such workflow (is the acmeflow bridge running?)")
        return WorkflowFacts(id_, problem=f"Temporal did not answer: {error.message}")
    status = described.status.name.replace("_", " ").title() if described.status else "Unknown"
    return WorkflowFacts(id_, status=status)


async def _challenges_told_by(temporal: Client, id_: str) -> list[ChallengeProgress]:
    handle = temporal.get_workflow_handle_for(OrderWorkflow.run, id_)
    try:
        progress = await handle.query(OrderWorkflow.progress, rpc_timeout=TEMPORAL_TIMEOUT)
    except (RPCError, WorkflowQueryFailedError):
        return []
    return progress.challenges


async def gather_from_temporal(report: CertificateStatusReport, settings: OperatorSettings) -> None:
    """Fill in the workflows; a Temporal that cannot be reached is said on each of them."""
    meta = report.certificate.metadata
    ids = [workflow_id(crd.Certificate.KIND, meta.namespace or "", meta.name)]
    if report.order is not None:
        ids.append(order_workflow_id(meta.namespace or "", report.order.metadata.name))
    try:
        temporal = await connect_temporal(settings)
    except OperatorError as error:
        report.workflows = [WorkflowFacts(id_, problem=str(error)) for id_ in ids]
        return
    report.workflows = [await _describe(temporal, id_) for id_ in ids]
    if report.order is not None:
        present = {challenge.metadata.name for challenge in report.challenges}
        report.deleted_challenges = [
            told
            for told in await _challenges_told_by(temporal, ids[-1])
            if told.spec.name not in present
        ]
