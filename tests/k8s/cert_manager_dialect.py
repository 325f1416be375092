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


def aws_and_cloudflare_dns01() -> dict[str, Any]:
    """Let's Encrypt with Route53 for one zone (behind a CNAME) and Cloudflare for two others."""
    return {
        "acme": {
            "server": "https://acme-v02.api.letsencrypt.org/directory",
            "email": "dns@example.com",
            "privateKeySecretRef": {"name": "letsencrypt-dns"},
            "solvers": [
                {
                    "selector": {"dnsZones": ["example.org"]},
                    "dns01": {
                        "cnameStrategy": "Follow",
                        "route53": {
                            "region": "eu-central-1",
                            "hostedZoneID": "Z0123456789ABCDEFGHIJ",
                            "accessKeyIDSecretRef": {"name": "route53", "key": "access-key-id"},
                            "secretAccessKeySecretRef": {
                                "name": "route53",
                                "key": "secret-access-key",
                            },
                            "role": "arn:aws:iam::123456789012:role/dns-manager",
                        },
                    },
                },
                {
                    "selector": {"dnsZones": ["example.net"]},
                    "dns01": {
                        "cloudflare": {
                            "apiTokenSecretRef": {"name": "cloudflare-token", "key": "api-token"}
                        }
                    },
                },
                {
                    "selector": {"dnsNames": ["legacy.example.com"]},
                    "dns01": {
                        "cloudflare": {
                            "email": "dns@example.com",
                            "apiKeySecretRef": {"name": "cloudflare-key", "key": "api-key"},
                        }
                    },
                },
            ],
        }
    }


def cloud_providers_dns01() -> dict[str, Any]:
    """Google Cloud DNS, Azure DNS (a service principal) and DigitalOcean, one zone each."""
    return {
        "acme": {
            "server": "https://acme-v02.api.letsencrypt.org/directory",
            "privateKeySecretRef": {"name": "letsencrypt-clouds"},
            "solvers": [
                {
                    "selector": {"dnsZones": ["gcp.example.com"]},
                    "dns01": {
                        "cloudDNS": {
                            "project": "dns-project-4711",
                            "hostedZoneName": "gcp-example-com",
                            "serviceAccountSecretRef": {"name": "clouddns", "key": "key.json"},
                        }
                    },
                },
                {
                    "selector": {"dnsZones": ["azure.example.com"]},
                    "dns01": {
                        "azureDNS": {
                            "clientID": "7d3c0b5e-0000-4000-8000-000000000001",
                            "clientSecretSecretRef": {"name": "azuredns", "key": "client-secret"},
                            "subscriptionID": "0b1f6471-0000-4000-8000-000000000002",
                            "tenantID": "72f988bf-0000-4000-8000-000000000003",
                            "resourceGroupName": "dns-rg",
                            "hostedZoneName": "azure.example.com",
                            "environment": "AzurePublicCloud",
                            "zoneType": "AzurePublicZone",
                        }
                    },
                },
                {
                    "dns01": {
                        "digitalocean": {"tokenSecretRef": {"name": "digitalocean", "key": "token"}}
                    }
                },
            ],
        }
    }


def webhook_dns01() -> dict[str, Any]:
    """A third-party cert-manager webhook (as Hetzner's chart documents it), config as written."""
    return {
        "acme": {
            "server": "https://acme-v02.api.letsencrypt.org/directory",
            "email": "ops@example.com",
            "privateKeySecretRef": {"name": "letsencrypt-hetzner"},
            "solvers": [
                {
                    "dns01": {
                        "webhook": {
                            "groupName": "acme.example.com",
                            "solverName": "hetzner",
                            "config": {
                                "secretName": "hetzner-secret",
                                "zoneName": "example.com",
                                "apiUrl": "https://dns.hetzner.com/api/v1",
                                "ttl": 60,
                                "nameservers": ["hydrogen.ns.hetzner.com", "oxygen.ns.hetzner.com"],
                                "dryRun": False,
                            },
                        }
                    }
                }
            ],
        }
    }


REALISTIC_SPECS = {
    "letsencrypt-http01": letsencrypt_http01,
    "zerossl-eab-dns01": zerossl_eab_dns01,
    "private-ca-gateway": private_ca_gateway,
    "pebble-dev": pebble_dev,
    "aws-and-cloudflare-dns01": aws_and_cloudflare_dns01,
    "cloud-providers-dns01": cloud_providers_dns01,
    "webhook-dns01": webhook_dns01,
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
AZURE_SERVICE_PRINCIPAL = {
    "clientID": "c",
    "clientSecretSecretRef": {"name": "azuredns", "key": "client-secret"},
    "tenantID": "t",
    "subscriptionID": "s",
    "resourceGroupName": "dns",
}

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
    "akamai": RefusedField(
        DNS01,
        {
            "akamai": {
                "serviceConsumerDomain": "akab-x.luna.akamaiapis.net",
                "clientTokenSecretRef": {"name": "akamai", "key": "client-token"},
                "clientSecretSecretRef": {"name": "akamai", "key": "client-secret"},
                "accessTokenSecretRef": {"name": "akamai", "key": "access-token"},
            }
        },
        "dns01.akamai is not supported: acmeflow reaches the long tail of DNS providers through "
        "dns-lexicon, which has no Akamai Edge DNS provider",
        "spec.acme.solvers[0].dns01.akamai",
        drops_solver=True,
    ),
    "acme-dns": RefusedField(
        DNS01,
        {
            "acmeDNS": {
                "host": "https://auth.acme-dns.io",
                "accountSecretRef": {"name": "a", "key": "b"},
            }
        },
        "dns01.acmeDNS is not supported: acmeflow has no acme-dns client",
        "spec.acme.solvers[0].dns01.acmeDNS",
        drops_solver=True,
    ),
    "route53-service-account-token": RefusedField(
        DNS01,
        {
            "route53": {
                "region": "eu-west-1",
                "role": "arn:aws:iam::123456789012:role/dns",
                "auth": {"kubernetes": {"serviceAccountRef": {"name": "cert-manager-acme"}}},
            }
        },
        "route53.auth is not supported: acmeflow does not request ServiceAccount tokens",
        "spec.acme.solvers[0].dns01.route53.auth",
        drops_solver=True,
    ),
    "cloud-dns-ambient": RefusedField(
        DNS01,
        {"cloudDNS": {"project": "my-project"}},
        "dns01.cloudDNS needs serviceAccountSecretRef in acmeflow: acmeflow reaches Cloud DNS "
        "through dns-lexicon, which cannot use the worker's ambient Google credentials",
        "spec.acme.solvers[0].dns01.cloudDNS.serviceAccountSecretRef",
        drops_solver=True,
    ),
    "azure-managed-identity": RefusedField(
        DNS01,
        {
            "azureDNS": {
                "subscriptionID": "s",
                "resourceGroupName": "dns",
                "hostedZoneName": "example.com",
                "managedIdentity": {"clientID": "c"},
            }
        },
        "azureDNS.managedIdentity is not supported: acmeflow reaches Azure DNS through "
        "dns-lexicon, which signs in only as a service principal",
        "spec.acme.solvers[0].dns01.azureDNS.managedIdentity",
        drops_solver=True,
    ),
    "azure-other-cloud": RefusedField(
        DNS01,
        {"azureDNS": {**AZURE_SERVICE_PRINCIPAL, "environment": "AzureChinaCloud"}},
        "azureDNS.environment AzureChinaCloud or AzureGermanCloud or AzureUSGovernmentCloud is "
        "not supported: dns-lexicon's azure provider talks only to Azure's public cloud",
        "spec.acme.solvers[0].dns01.azureDNS.environment",
        drops_solver=True,
    ),
    "azure-private-zone": RefusedField(
        DNS01,
        {"azureDNS": {**AZURE_SERVICE_PRINCIPAL, "zoneType": "AzurePrivateZone"}},
        "azureDNS.zoneType AzurePrivateZone is not supported: dns-lexicon's azure provider "
        "manages public DNS zones only",
        "spec.acme.solvers[0].dns01.azureDNS.zoneType",
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
