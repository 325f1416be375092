"""cert-manager's own Certificate and Issuer (``cert-manager.io/v1``), as the benchmark sends them.

Only the fields the benchmark sets. The Issuer's ``spec.acme`` is acmeflow's own
``AcmeIssuerSpec``: it speaks cert-manager's ACME dialect, so one spec serves both
projects' Issuers, and any difference in the figures is not a difference in configuration.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from harness.acmeflow_api import CERT_MANAGER_API_VERSION, CertManagerIssuerRef, crds


class CertManagerCertificateSpec(crds.CrdModel):
    secret_name: str
    dns_names: list[str]
    issuer_ref: CertManagerIssuerRef
    """``group: cert-manager.io`` for its own issuers, ``acmeflow.io`` for acmeflow's."""
    private_key: crds.PrivateKeySpec


class CertManagerCertificate(crds.KubeResource):
    KIND: ClassVar[str] = "Certificate"
    PLURAL: ClassVar[str] = "certificates"

    api_version: str = CERT_MANAGER_API_VERSION
    kind: Literal["Certificate"] = "Certificate"
    spec: CertManagerCertificateSpec


class CertManagerIssuer(crds.KubeResource):
    KIND: ClassVar[str] = "Issuer"
    PLURAL: ClassVar[str] = "issuers"

    api_version: str = CERT_MANAGER_API_VERSION
    kind: Literal["Issuer"] = "Issuer"
    spec: crds.IssuerSpec
