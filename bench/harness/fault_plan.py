"""What a fault run asks for: a namespace, one Issuer, and a mix of Certificates.

One Issuer on the CA behind the run's ACME proxy, with two solvers: DNS-01 by RFC 2136 to
the stack's BIND9 for names under ``dns.example.com`` (selected by zone), HTTP-01 for the
rest. The Certificates cycle through three kinds:

- ``HTTP-01``: ``h<i>-<run>.example.com``;
- ``DNS-01``: ``d<i>-<run>.dns.example.com``;
- ``wildcard+apex``: ``*.w<i>-<run>.dns.example.com`` and its apex, two DNS-01 challenges
  that share one ``_acme-challenge`` name with two TXT values.

Every Certificate asks for an ECDSA P-256 key (RSA would add CPU that measures nothing).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from harness.acmeflow_api import StackInfo, crds
from harness.kube import ISSUER, issuer_ref, metadata

DNS_ZONE = "dns.example.com"
KINDS = ("HTTP-01", "DNS-01", "wildcard+apex")
TSIG_SECRET = "tsig"


@dataclass(frozen=True)
class PlannedCertificate:
    name: str
    kind: str
    dns_names: tuple[str, ...]

    @property
    def secret_name(self) -> str:
        return f"{self.name}-tls"

    @property
    def txt_records(self) -> tuple[str, ...]:
        """The ``_acme-challenge`` names its DNS-01 challenges use (none for HTTP-01)."""
        if self.kind == "HTTP-01":
            return ()
        return tuple(sorted({f"_acme-challenge.{n.removeprefix('*.')}" for n in self.dns_names}))

    def resource(self, namespace: str) -> crds.Certificate:
        spec = crds.CertificateSpec(
            secret_name=self.secret_name,
            dns_names=list(self.dns_names),
            issuer_ref=issuer_ref(),
            private_key=crds.PrivateKeySpec(algorithm="ECDSA"),
        )
        return crds.Certificate(metadata=metadata(namespace, self.name), spec=spec)


def planned_certificates(run_id: str, count: int) -> list[PlannedCertificate]:
    """``count`` Certificates, the three kinds in turn."""
    planned = []
    for i in range(count):
        kind = KINDS[i % len(KINDS)]
        if kind == "HTTP-01":
            names: tuple[str, ...] = (f"h{i}-{run_id}.example.com",)
        elif kind == "DNS-01":
            names = (f"d{i}-{run_id}.{DNS_ZONE}",)
        else:
            apex = f"w{i}-{run_id}.{DNS_ZONE}"
            names = (f"*.{apex}", apex)
        planned.append(PlannedCertificate(f"faults-{i}", kind, names))
    return planned


def tsig_secret(stack: StackInfo, namespace: str) -> dict[str, object]:
    """The stack's TSIG key as the Secret the DNS-01 solver names."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": TSIG_SECRET, "namespace": namespace},
        "stringData": {"secret": stack.tsig_secret_path.read_text().strip()},
    }


def fault_issuer(stack: StackInfo, namespace: str, *, server: str) -> crds.Issuer:
    """The Issuer on ``server`` (the proxy), DNS-01 for ``DNS_ZONE``, HTTP-01 otherwise."""
    dns01 = crds.AcmeSolver(
        selector=crds.AcmeSolverSelector(dns_zones=[DNS_ZONE]),
        dns01=crds.Dns01Solver(
            rfc2136=crds.Rfc2136Provider(
                nameserver=stack.dns_address,
                tsig_key_name=stack.tsig_key_name,
                tsig_secret_secret_ref=crds.SecretKeyRef(name=TSIG_SECRET, key="secret"),
                tsig_algorithm=crds.TsigAlgorithm.HMACSHA256,
            )
        ),
    )
    http01 = crds.AcmeSolver(http01=crds.Http01Solver(ingress=crds.IngressSolver()))
    acme = crds.AcmeIssuerSpec(
        server=server,
        ca_bundle=base64.b64encode(stack.acme_ca_bundle.read_bytes()).decode(),
        email="ops@example.com",
        private_key_secret_ref=crds.AccountKeySecretRef(name="faults-account"),
        solvers=[dns01, http01],
    )
    return crds.Issuer(metadata=metadata(namespace, ISSUER), spec=crds.IssuerSpec(acme=acme))
