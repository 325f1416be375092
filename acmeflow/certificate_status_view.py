"""The screen of ``acmeflow status certificate``: one Certificate, top to bottom, the way
a person debugs it (conditions, Secret, Order, Challenges), then where Temporal keeps it.

Labels follow ``cmctl status certificate`` so a cert-manager user reads it at once;
what cert-manager has no word for (workflows, the Temporal UI link) comes last.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from kubernetes import client

from acmeflow.certificate_status import CertificateStatusReport, StoredCertificate
from acmeflow.crds import models as crd
from acmeflow.operator_access import OperatorSettings, workflow_link

INDENT = "  "
NO_UI = "<set ACMEFLOW_TEMPORAL_UI or --temporal-ui for a link>"


def _time(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else "<none>"


def _condition(condition: crd.Condition) -> str:
    return (
        f"{condition.type}: {condition.status}, Reason: {condition.reason or ''}, "
        f"Message: {condition.message or ''}"
    )


def _names(title: str, names: list[str] | tuple[str, ...], indent: str = "") -> Iterator[str]:
    if names:
        yield f"{indent}{title}:"
        yield from (f"{indent}- {name}" for name in names)


def _conditions(conditions: list[crd.Condition] | None, indent: str) -> Iterator[str]:
    if not conditions:
        yield f"{indent}Conditions: <none>"
        return
    yield f"{indent}Conditions:"
    yield from (f"{indent}{INDENT}{_condition(c)}" for c in conditions)


def _issuer(report: CertificateStatusReport) -> Iterator[str]:
    ref = report.certificate.spec.issuer_ref
    yield "Issuer:"
    yield f"{INDENT}Name: {ref.name}, Kind: {ref.kind}"
    if report.issuer is None:
        yield f"{INDENT}{report.issuer_problem}"
        return
    status = report.issuer.status
    yield from _conditions(status.conditions if status else None, INDENT)


def _secret(name: str, stored: StoredCertificate) -> Iterator[str]:
    yield "Secret:"
    yield f"{INDENT}Name: {name}"
    if stored.problem:
        yield f"{INDENT}{stored.problem}"
        return
    yield f"{INDENT}Subject: {stored.subject or '<empty>'}"
    yield f"{INDENT}Issuer: {stored.issuer}"
    yield from _names("DNS Names", stored.dns_names, INDENT)
    yield from _names("IP Addresses", stored.ip_addresses, INDENT)
    yield f"{INDENT}Not Before: {stored.not_before}"
    yield f"{INDENT}Not After: {stored.not_after}"
    yield f"{INDENT}Serial Number: {stored.serial}"


def _status(status: crd.CertificateStatus | None) -> Iterator[str]:
    status = status or crd.CertificateStatus()
    yield f"Not Before: {_time(status.not_before)}"
    yield f"Not After: {_time(status.not_after)}"
    rule = f" ({status.renewal_rule})" if status.renewal_rule else ""
    yield f"Renewal Time: {_time(status.renewal_time)}{rule}"
    yield f"Revision: {status.revision or 0}"
    if status.failed_issuance_attempts:
        yield (
            f"Failed Issuance Attempts: {status.failed_issuance_attempts}, "
            f"Last Failure Time: {_time(status.last_failure_time)}"
        )
    if status.next_private_key_secret_name:
        yield f"Next Private Key Secret: {status.next_private_key_secret_name}"


def _events(events: list[client.CoreV1Event], indent: str = "") -> Iterator[str]:
    if not events:
        yield f"{indent}Events: <none>"
        return
    yield f"{indent}Events:"
    width = max(len(event.reason or "") for event in events)
    for event in events:
        yield f"{indent}{INDENT}{event.type:<7}  {event.reason or '':<{width}}  {event.message}"


def _order(order: crd.Order | None) -> Iterator[str]:
    if order is None:
        yield "Order: <none> (no issuance has started)"
        return
    status = order.status or crd.OrderStatus()
    yield "Order:"
    yield f"{INDENT}Name: {order.metadata.name}"
    yield f"{INDENT}State: {status.state or 'unknown'}, Reason: {status.reason or ''}"
    if status.url:
        yield f"{INDENT}URL: {status.url}"
    if status.authorizations:
        yield f"{INDENT}Authorizations:"
    for authorization in status.authorizations or []:
        yield (
            f"{INDENT}- Identifier: {authorization.identifier}, "
            f"Initial State: {authorization.initial_state}, "
            f"Wildcard: {str(bool(authorization.wildcard)).lower()}"
        )


def _challenges(report: CertificateStatusReport) -> Iterator[str]:
    """The Challenge resources, then those deleted once done, as the workflow tells them."""
    if report.order is None:
        return
    if not report.challenges and not report.deleted_challenges:
        yield "Challenges: <none>"
        return
    yield "Challenges:"
    for challenge in report.challenges:
        spec, status = challenge.spec, challenge.status or crd.ChallengeStatus()
        yield (
            f"- Name: {challenge.metadata.name}, Type: {spec.type}, "
            f"Domain: {spec.dns_name}, State: {status.state or 'pending'}, "
            f"Reason: {status.reason or ''}, "
            f"Processing: {str(bool(status.processing)).lower()}, "
            f"Presented: {str(bool(status.presented)).lower()}"
        )
    for progress in report.deleted_challenges:
        told = progress.spec
        yield (
            f"- Name: {told.name} (deleted once done; from its workflow), Type: {told.type}, "
            f"Domain: {told.shown_name}, State: {progress.state}, Reason: {progress.reason}"
        )


def _workflows(report: CertificateStatusReport, settings: OperatorSettings) -> Iterator[str]:
    where = f"{settings.temporal_address}, namespace {settings.temporal_namespace}"
    yield f"Workflows (Temporal {where}):"
    for kind, facts in zip(("Certificate", "Order"), report.workflows, strict=False):
        yield f"{INDENT}{kind}: {facts.workflow_id} ({facts.status or facts.problem})"
        link = workflow_link(settings, facts.workflow_id) or NO_UI
        yield f"{INDENT}{INDENT}Temporal UI: {link}"


def render(report: CertificateStatusReport, settings: OperatorSettings) -> str:
    certificate = report.certificate
    meta, spec = certificate.metadata, certificate.spec
    lines = [
        f"Name: {meta.name}",
        f"Namespace: {meta.namespace}",
        f"Created at: {_time(meta.creation_timestamp)}",
        *_conditions(certificate.status.conditions if certificate.status else None, ""),
        *(f"Common Name: {spec.common_name}" for _ in [spec.common_name] if spec.common_name),
        *_names("DNS Names", spec.dns_names),
        *_names("IP Addresses", spec.ip_addresses),
        *_events(report.events),
        *_issuer(report),
        *_secret(spec.secret_name, report.secret),
        *_status(certificate.status),
        *_order(report.order),
        *_challenges(report),
        *_workflows(report, settings),
    ]
    return "\n".join(lines)
