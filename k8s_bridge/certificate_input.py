"""A Certificate resource and its issuer, as the input of its workflow."""

from __future__ import annotations

import re

from acmeflow.contracts.issuer import IssuerConfig
from acmeflow.contracts.names import RequestedNames
from acmeflow.crds.models import Certificate, PrivateKeySpec
from acmeflow.workflows.certificate import CertificateInput, CertificateSpecInput

_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)")
DEFAULT_DURATION = "2160h"


def go_duration_seconds(text: str) -> float:
    """Seconds in a Go duration such as ``2160h`` or ``1h30m`` (the CRD checks the form)."""
    parts = _PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"{text!r} is not a duration such as 2160h or 1h30m")
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)


def certificate_input(
    certificate: Certificate, issuer: IssuerConfig, *, observer_task_queue: str
) -> CertificateInput:
    spec = certificate.spec
    metadata = certificate.metadata
    duration = spec.duration or DEFAULT_DURATION
    key = spec.private_key or PrivateKeySpec()
    template = spec.secret_template
    return CertificateInput(
        namespace=metadata.namespace or "",
        name=metadata.name,
        uid=metadata.uid or "",
        spec=CertificateSpecInput(
            secret_name=spec.secret_name,
            names=RequestedNames(
                common_name=spec.common_name or "",
                dns_names=list(spec.dns_names),
                ip_addresses=list(spec.ip_addresses),
            ),
            issuer_ref=spec.issuer_ref.to_api(),
            generation=metadata.generation or 0,
            duration=duration,
            duration_s=go_duration_seconds(duration),
            renew_before_s=go_duration_seconds(spec.renew_before) if spec.renew_before else 0,
            renew_before_percentage=spec.renew_before_percentage or 0,
            key_algorithm=key.algorithm,
            key_size=key.size or 0,
            rotation_policy=key.rotation_policy,
            labels=dict(metadata.labels or {}),
            key_encoding=key.encoding,
            secret_labels=dict(template.labels) if template else {},
            secret_annotations=dict(template.annotations) if template else {},
            additional_output_formats=[f.type for f in spec.additional_output_formats],
            revision_history_limit=spec.revision_history_limit or 0,
            profile=spec.profile or "",
        ),
        issuer=issuer,
        observer_task_queue=observer_task_queue,
    )
