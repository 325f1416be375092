"""cert-manager ACME issuer specs as people write them, and the fields acmeflow refuses.

Shared by the admission test (pasted into acmeflow's Issuer on the real kube-apiserver)
and the ``acmeflow convert-issuer`` tests. Each spec is what cert-manager's documentation
and real clusters show, spelled exactly as cert-manager spells it.
"""

from __future__ import annotations

import base64
import copy
import datetime
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _self_signed_pem() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Internal ACME CA")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)


CA_BUNDLE = base64.b64encode(_self_signed_pem())
"""Base64 of a PEM certificate, as ``caBundle`` holds it."""


def letsencrypt_http01() -> dict[str, Any]:
    """cert-manager's getting-started issuer: Let's Encrypt, HTTP-01 through ingress-nginx."""
    return {
        "acme": {
            "server": "https://acme-staging-v02.api.letsencrypt.org/directory",
            "email": "ops@example.com",
            "privateKeySecretRef": {"name": "letsencrypt-staging"},
            "profile": "tlsserver",
            "preferredChain": "ISRG Root X1",
            "solvers": [{"http01": {"ingress": {"ingressClassName": "nginx"}}}],
        }
    }


def zerossl_eab_dns01() -> dict[str, Any]:
    """ZeroSSL with External Account Binding; DNS-01 by RFC 2136 for one zone, HTTP-01 else."""
    return {
        "acme": {
            "server": "https://acme.zerossl.com/v2/DV90",
            "email": "pki@example.com",
            "privateKeySecretRef": {"name": "zerossl-account", "key": "account.key"},
            "externalAccountBinding": {
                "keyID": "f3Bq-ZeroSSL-kid",
                "keySecretRef": {"name": "zerossl-eab", "key": "secret"},
                "keyAlgorithm": "HS256",
            },
            "disableAccountKeyGeneration": False,
            "enableDurationFeature": False,
            "solvers": [
                {
                    "selector": {"dnsZones": ["example.com"]},
                    "dns01": {
                        "cnameStrategy": "None",
                        "rfc2136": {
                            "nameserver": "192.0.2.53:53",
                            "tsigKeyName": "acme-update",
                            "tsigAlgorithm": "hmacsha512",
                            "tsigSecretSecretRef": {"name": "tsig-secret", "key": "tsig.key"},
                            "protocol": "TCP",
                        },
                    },
                },
                {
                    "selector": {"dnsNames": ["legacy.example.org"]},
                    "http01": {"ingress": {"class": "nginx", "serviceType": "ClusterIP"}},
                },
            ],
        }
    }


def private_ca_gateway() -> dict[str, Any]:
    """An internal ACME CA (step-ca) trusted through caBundle; HTTP-01 through Gateway API."""
    return {
        "acme": {
            "server": "https://ca.internal.example:9000/acme/acme/directory",
            "caBundle": CA_BUNDLE.decode(),
            "privateKeySecretRef": {"name": "step-ca-account"},
            "solvers": [
                {
                    "selector": {
                        "matchLabels": {"team": "web"},
                        "dnsNames": ["www.internal.example", "api.internal.example"],
                    },
                    "http01": {
                        "gatewayHTTPRoute": {
                            "serviceType": "ClusterIP",
                            "labels": {"gateway": "internal"},
                            "parentRefs": [
                                {
                                    "group": "gateway.networking.k8s.io",
                                    "kind": "Gateway",
                                    "name": "internal",
                                    "namespace": "gateway-system",
                                    "sectionName": "http",
                                    "port": 80,
                                }
                            ],
                        }
                    },
                },
                {
                    "dns01": {
                        "rfc2136": {
                            "nameserver": "[2001:db8::53]:5353",
                            "tsigKeyName": "internal-key",
                            "tsigAlgorithm": "HMACSHA256",
                            "tsigSecretSecretRef": {"name": "internal-tsig", "key": "secret"},
                            "protocol": "UDP",
                        }
                    }
                },
            ],
        }
    }


def pebble_dev() -> dict[str, Any]:
    """A development issuer: TLS not verified, unsigned RFC 2136 updates to a local server."""
    return {
        "acme": {
            "server": "https://localhost:14000/dir",
            "skipTLSVerify": True,
            "privateKeySecretRef": {"name": "pebble-account", "key": "tls.key"},
            "solvers": [
                {
                    "selector": {"dnsNames": ["*.dev.example", "dev.example"]},
                    "dns01": {"rfc2136": {"nameserver": "127.0.0.1:53"}},
                }
            ],
        }
    }


REALISTIC_SPECS = {
    "letsencrypt-http01": letsencrypt_http01,
    "zerossl-eab-dns01": zerossl_eab_dns01,
    "private-ca-gateway": private_ca_gateway,
    "pebble-dev": pebble_dev,
}
"""Every ACME field cert-manager has that acmeflow carries appears in at least one of these."""

DEFAULTS_FILLED_IN = {"privateKeySecretRef": {"key": "tls.key"}}
"""What acmeflow's schema (like cert-manager's code) fills in when it is left out."""


def with_defaults(spec: dict[str, Any]) -> dict[str, Any]:
    """``spec`` as the API server stores it: the documented defaults added, nothing else."""
    stored = copy.deepcopy(spec)
    secret_ref = stored["acme"]["privateKeySecretRef"]
    secret_ref.setdefault("key", DEFAULTS_FILLED_IN["privateKeySecretRef"]["key"])
    return stored


@dataclass(frozen=True)
class RefusedField:
    """A cert-manager field acmeflow refuses: where it goes, its value, what admission says."""

    path: tuple[str | int, ...]
    """Keys from ``spec`` down, into ``zerossl_eab_dns01()`` (solver 0: DNS-01, 1: HTTP-01)."""
    value: Any
    message: str
    """A part of the refusal a person reads."""
    field_path: str
    """Where the API server says the problem is."""
    drops_solver: bool = False
    """convert-issuer leaves the whole solver out instead of only the field."""


DNS01 = ("acme", "solvers", 0, "dns01")
INGRESS = ("acme", "solvers", 1, "http01", "ingress")
POD_TEMPLATE = {"spec": {"nodeSelector": {"kubernetes.io/os": "linux"}}}
ISSUE_14 = "is not supported yet: acmeflow publishes DNS-01 records only by RFC 2136"

REFUSED_FIELDS: dict[str, RefusedField] = {
    "ingress-name": RefusedField(
        (*INGRESS, "name"),
        "web",
        "ingress.name is not supported: acmeflow never edits an existing Ingress",
        "spec.acme.solvers[1].http01.ingress.name",
    ),
    "ingress-node-port": RefusedField(
        (*INGRESS, "serviceType"),
        "NodePort",
        "ingress.serviceType NodePort is not supported: every HTTP-01 request goes to "
        "acmeflow's one shared ClusterIP solver Service",
        "spec.acme.solvers[1].http01.ingress.serviceType",
    ),
    "ingress-pod-template": RefusedField(
        (*INGRESS, "podTemplate"),
        POD_TEMPLATE,
        "ingress.podTemplate is not supported: acmeflow runs no pod per challenge",
        "spec.acme.solvers[1].http01.ingress.podTemplate",
    ),
    "ingress-template": RefusedField(
        (*INGRESS, "ingressTemplate"),
        {"metadata": {"annotations": {"nginx.ingress.kubernetes.io/ssl-redirect": "false"}}},
        "ingress.ingressTemplate is not supported: acmeflow's challenge Ingresses carry only",
        "spec.acme.solvers[1].http01.ingress.ingressTemplate",
    ),
    "gateway-pod-template": RefusedField(
        ("acme", "solvers", 1, "http01"),
        {"gatewayHTTPRoute": {"parentRefs": [{"name": "gw"}], "podTemplate": POD_TEMPLATE}},
        "gatewayHTTPRoute.podTemplate is not supported: acmeflow runs no pod per challenge",
        "spec.acme.solvers[1].http01.gatewayHTTPRoute.podTemplate",
    ),
    "gateway-node-port": RefusedField(
        ("acme", "solvers", 1, "http01"),
        {"gatewayHTTPRoute": {"parentRefs": [{"name": "gw"}], "serviceType": "NodePort"}},
        "gatewayHTTPRoute.serviceType NodePort is not supported",
        "spec.acme.solvers[1].http01.gatewayHTTPRoute.serviceType",
    ),
    "wait-instead-of-self-check": RefusedField(
        ("acme", "solvers", 1, "waitInsteadOfSelfCheck"),
        "30s",
        "waitInsteadOfSelfCheck is not supported: acmeflow always self-checks",
        "spec.acme.solvers[1].waitInsteadOfSelfCheck",
    ),
    "cname-follow": RefusedField(
        (*DNS01, "cnameStrategy"),
        "Follow",
        "dns01.cnameStrategy Follow is not supported: acmeflow writes the TXT record at "
        "_acme-challenge.<name> and does not follow a CNAME",
        "spec.acme.solvers[0].dns01.cnameStrategy",
        drops_solver=True,
    ),
    "route53": RefusedField(
        (*DNS01, "route53"),
        {"region": "eu-west-1", "hostedZoneID": "Z2ABC", "role": "arn:aws:iam::1:role/dns"},
        f"dns01.route53 {ISSUE_14}",
        "spec.acme.solvers[0].dns01.route53",
        drops_solver=True,
    ),
    "cloudflare": RefusedField(
        (*DNS01, "cloudflare"),
        {"apiTokenSecretRef": {"name": "cloudflare", "key": "api-token"}},
        f"dns01.cloudflare {ISSUE_14}",
        "spec.acme.solvers[0].dns01.cloudflare",
        drops_solver=True,
    ),
    "webhook": RefusedField(
        (*DNS01, "webhook"),
        {"groupName": "acme.example.com", "solverName": "pdns", "config": {"zone": "x"}},
        f"dns01.webhook {ISSUE_14}",
        "spec.acme.solvers[0].dns01.webhook",
        drops_solver=True,
    ),
    "cloud-dns": RefusedField(
        (*DNS01, "cloudDNS"),
        {"project": "my-project"},
        f"dns01.cloudDNS {ISSUE_14}",
        "spec.acme.solvers[0].dns01.cloudDNS",
        drops_solver=True,
    ),
    "azure-dns": RefusedField(
        (*DNS01, "azureDNS"),
        {"subscriptionID": "s", "resourceGroupName": "dns", "managedIdentity": {"clientID": "c"}},
        f"dns01.azureDNS {ISSUE_14}",
        "spec.acme.solvers[0].dns01.azureDNS",
        drops_solver=True,
    ),
    "digitalocean": RefusedField(
        (*DNS01, "digitalocean"),
        {"tokenSecretRef": {"name": "do", "key": "token"}},
        f"dns01.digitalocean {ISSUE_14}",
        "spec.acme.solvers[0].dns01.digitalocean",
        drops_solver=True,
    ),
    "acme-dns": RefusedField(
        (*DNS01, "acmeDNS"),
        {"host": "https://auth.acme-dns.io", "accountSecretRef": {"name": "a", "key": "b"}},
        f"dns01.acmeDNS {ISSUE_14}",
        "spec.acme.solvers[0].dns01.acmeDNS",
        drops_solver=True,
    ),
    "akamai": RefusedField(
        (*DNS01, "akamai"),
        {
            "serviceConsumerDomain": "akab-x.luna.akamaiapis.net",
            "clientTokenSecretRef": {"name": "akamai", "key": "client-token"},
            "clientSecretSecretRef": {"name": "akamai", "key": "client-secret"},
            "accessTokenSecretRef": {"name": "akamai", "key": "access-token"},
        },
        f"dns01.akamai {ISSUE_14}",
        "spec.acme.solvers[0].dns01.akamai",
        drops_solver=True,
    ),
    "disable-account-key-generation": RefusedField(
        ("acme", "disableAccountKeyGeneration"),
        True,
        "disableAccountKeyGeneration true is not supported: acmeflow creates the account key",
        "spec.acme.disableAccountKeyGeneration",
    ),
    "enable-duration-feature": RefusedField(
        ("acme", "enableDurationFeature"),
        True,
        "enableDurationFeature true is not supported: acmeflow never asks the CA for a notAfter",
        "spec.acme.enableDurationFeature",
    ),
    "ca-issuer-beside-acme": RefusedField(
        ("ca",),
        {"secretName": "root-ca"},
        "ca is not supported: acmeflow issues certificates only from ACME CAs",
        "spec.ca",
    ),
    "vault-issuer-beside-acme": RefusedField(
        ("vault",),
        {"server": "https://vault.example", "path": "pki/sign/web"},
        "vault is not supported: acmeflow issues certificates only from ACME CAs",
        "spec.vault",
    ),
}
"""One entry per refused field; each is refused with its own reason, nothing pruned."""


def with_refused(refused: RefusedField) -> dict[str, Any]:
    """The ZeroSSL spec with one refused field set."""
    spec = zerossl_eab_dns01()
    target: Any = spec
    for key in refused.path[:-1]:
        target = target[key]
    target[refused.path[-1]] = copy.deepcopy(refused.value)
    return spec
