"""DNS-01 provider blocks on the real kube-apiserver: what admission accepts and what it says.

A person writes one provider per ``dns01`` block, in cert-manager's spelling (or acmeflow's
own ``lexicon``). Each good block must be stored as written; each mistake must be refused
with a message that says what to change, at the field it is about. Every bad case is also
sent once repaired, so the rule named is what refused it.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from acmeflow.crds.models import (
    API_VERSION,
    Challenge,
    ChallengeSpec,
    IssuerRef,
    IssuerSpec,
    ObjectMeta,
)
from acmeflow.devstack.stack import StackInfo
from acmeflow.k8s_bridge.challenge_resources import solver_resource
from acmeflow.k8s_bridge.issuer_translation import issuer_config_from_spec
from tests.k8s.cert_manager_dialect import REALISTIC_SPECS
from tests.k8s.kube_helpers import Kubectl, install_acmeflow_crds, temporary_namespace

pytestmark = pytest.mark.stack

SOLVER = "spec.acme.solvers[0].dns01"
KEY = {"name": "dns-credentials", "key": "token"}

GOOD_BLOCKS: dict[str, dict[str, Any]] = {
    "lexicon-powerdns": {
        "cnameStrategy": "Follow",
        "lexicon": {
            "provider": "powerdns",
            "zone": "example.net",
            "credentialsSecretRef": {"name": "powerdns-api"},
            "options": {"pdns_server": "http://127.0.0.1:8081", "pdns_server_id": "localhost"},
        },
    },
    "webhook-with-nested-config": {
        "webhook": {
            "groupName": "acme.example.com",
            "solverName": "rfc2136-bind",
            "config": {"nameserver": "127.0.0.1:53", "ttl": 60, "keys": [{"name": "k"}]},
        }
    },
    "route53-ambient": {"route53": {"region": "eu-west-1", "role": "arn:aws:iam::1:role/dns"}},
    "route53-clear-key-id": {
        "route53": {"accessKeyID": "AKIAEXAMPLE", "secretAccessKeySecretRef": KEY}
    },
}


@dataclass(frozen=True)
class BadBlock:
    block: dict[str, Any]
    message: str
    field: str
    repaired: dict[str, Any]
    """The same block with the mistake put right, which admission accepts."""


BAD_BLOCKS: dict[str, BadBlock] = {
    "two-providers": BadBlock(
        {"rfc2136": {"nameserver": "127.0.0.1"}, "route53": {"region": "eu-west-1"}},
        "dns01 needs exactly one provider: rfc2136, webhook, route53, lexicon, cloudflare, "
        "cloudDNS, azureDNS, digitalocean",
        SOLVER,
        {"route53": {"region": "eu-west-1"}},
    ),
    "no-provider": BadBlock(
        {"cnameStrategy": "Follow"},
        "dns01 needs exactly one provider",
        SOLVER,
        {"cnameStrategy": "Follow", "digitalocean": {"tokenSecretRef": KEY}},
    ),
    "cname-strategy-misspelt": BadBlock(
        {"cnameStrategy": "follow", "digitalocean": {"tokenSecretRef": KEY}},
        'Unsupported value: "follow"',
        f"{SOLVER}.cnameStrategy",
        {"cnameStrategy": "Follow", "digitalocean": {"tokenSecretRef": KEY}},
    ),
    "lexicon-credential-in-options": BadBlock(
        {"lexicon": {"provider": "hetzner", "options": {"auth_token": "s3cr3t"}}},
        "options must not hold credentials (a name with token, secret, pass, key): put them in "
        "the Secret credentialsSecretRef names",
        f"{SOLVER}.lexicon.options",
        {"lexicon": {"provider": "hetzner", "credentialsSecretRef": {"name": "hetzner"}}},
    ),
    "lexicon-option-as-cli-flag": BadBlock(
        {"lexicon": {"provider": "powerdns", "options": {"pdns-server": "http://pdns:8081"}}},
        "options keys are lexicon option names with underscores, e.g. pdns_server",
        f"{SOLVER}.lexicon.options",
        {"lexicon": {"provider": "powerdns", "options": {"pdns_server": "http://pdns:8081"}}},
    ),
    "lexicon-provider-capitalised": BadBlock(
        {"lexicon": {"provider": "PowerDNS"}},
        "provider must be a dns-lexicon provider name such as powerdns",
        f"{SOLVER}.lexicon.provider",
        {"lexicon": {"provider": "powerdns"}},
    ),
    "webhook-without-solver-name": BadBlock(
        {"webhook": {"groupName": "acme.example.com"}},
        "Required value",
        f"{SOLVER}.webhook.solverName",
        {"webhook": {"groupName": "acme.example.com", "solverName": "hetzner"}},
    ),
    "webhook-solver-name-as-path": BadBlock(
        {"webhook": {"groupName": "acme.example.com", "solverName": "v1alpha1/hetzner"}},
        "solverName must be the webhook's solver name",
        f"{SOLVER}.webhook.solverName",
        {"webhook": {"groupName": "acme.example.com", "solverName": "hetzner"}},
    ),
    "route53-key-id-twice": BadBlock(
        {
            "route53": {
                "accessKeyID": "AKIAEXAMPLE",
                "accessKeyIDSecretRef": KEY,
                "secretAccessKeySecretRef": KEY,
            }
        },
        "set either accessKeyID or accessKeyIDSecretRef, not both",
        f"{SOLVER}.route53.accessKeyIDSecretRef",
        {"route53": {"accessKeyIDSecretRef": KEY, "secretAccessKeySecretRef": KEY}},
    ),
    "route53-key-id-without-secret": BadBlock(
        {"route53": {"accessKeyID": "AKIAEXAMPLE"}},
        "an access key ID (accessKeyID or accessKeyIDSecretRef) and secretAccessKeySecretRef "
        "go together",
        f"{SOLVER}.route53.secretAccessKeySecretRef",
        {"route53": {"accessKeyID": "AKIAEXAMPLE", "secretAccessKeySecretRef": KEY}},
    ),
    "cloudflare-key-and-token": BadBlock(
        {
            "cloudflare": {
                "email": "a@example.com",
                "apiKeySecretRef": KEY,
                "apiTokenSecretRef": KEY,
            }
        },
        "cloudflare needs exactly one of apiTokenSecretRef (an API token, recommended) or "
        "apiKeySecretRef",
        f"{SOLVER}.cloudflare",
        {"cloudflare": {"apiTokenSecretRef": KEY}},
    ),
    "cloudflare-key-without-email": BadBlock(
        {"cloudflare": {"apiKeySecretRef": KEY}},
        "apiKeySecretRef (a Global API key) needs email",
        f"{SOLVER}.cloudflare.email",
        {"cloudflare": {"email": "a@example.com", "apiKeySecretRef": KEY}},
    ),
    "azure-without-service-principal": BadBlock(
        {"azureDNS": {"subscriptionID": "s", "resourceGroupName": "dns"}},
        "dns01.azureDNS needs clientID, clientSecretSecretRef and tenantID in acmeflow",
        f"{SOLVER}.azureDNS.clientID",
        {
            "azureDNS": {
                "subscriptionID": "s",
                "resourceGroupName": "dns",
                "clientID": "c",
                "clientSecretSecretRef": KEY,
                "tenantID": "t",
            }
        },
    ),
    "digitalocean-without-token": BadBlock(
        {"digitalocean": {}},
        "Required value",
        f"{SOLVER}.digitalocean.tokenSecretRef",
        {"digitalocean": {"tokenSecretRef": KEY}},
    ),
}


@pytest.fixture(scope="module")
def kubectl(stack: StackInfo) -> Kubectl:
    kubectl = Kubectl(stack)
    install_acmeflow_crds(kubectl)
    return kubectl


@pytest.fixture(scope="module")
def namespace(kubectl: Kubectl) -> Iterator[str]:
    with temporary_namespace(kubectl, "dns01-admission") as name:
        yield name


def issuer(namespace: str, dns01: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "Issuer",
        "metadata": {"name": f"dns01-{uuid.uuid4().hex[:8]}", "namespace": namespace},
        "spec": {
            "acme": {
                "server": "https://acme.example/directory",
                "privateKeySecretRef": {"name": "account", "key": "tls.key"},
                "solvers": [{"selector": {"dnsZones": ["example.net"]}, "dns01": dns01}],
            }
        },
    }


@pytest.mark.parametrize("case", sorted(GOOD_BLOCKS))
def test_a_provider_block_is_stored_as_written(kubectl: Kubectl, namespace: str, case: str) -> None:
    manifest = issuer(namespace, copy.deepcopy(GOOD_BLOCKS[case]))

    created = kubectl.create(manifest, check=False)

    assert created.returncode == 0, created.stderr
    stored = kubectl.get("issuers.acmeflow.io", manifest["metadata"]["name"], namespace=namespace)
    assert stored["spec"]["acme"]["solvers"][0]["dns01"] == GOOD_BLOCKS[case]


@pytest.mark.parametrize("case", sorted(BAD_BLOCKS))
def test_a_bad_provider_block_is_refused_with_what_to_change(
    kubectl: Kubectl, namespace: str, case: str
) -> None:
    bad = BAD_BLOCKS[case]
    manifest = issuer(namespace, copy.deepcopy(bad.block))

    refused = kubectl.create(manifest, check=False)

    assert refused.returncode != 0, f"{case} was accepted"
    assert f'The Issuer "{manifest["metadata"]["name"]}" is invalid' in refused.stderr
    assert bad.message in refused.stderr, refused.stderr
    assert f"{bad.field}: " in refused.stderr, refused.stderr
    repaired = issuer(namespace, copy.deepcopy(bad.repaired))
    kubectl("create", "--dry-run=server", "-f", "-", stdin=json.dumps(repaired))


PASTED_DNS01 = {
    f"{name}-{index}": solver
    for name, spec in sorted(REALISTIC_SPECS.items())
    for index, solver in enumerate(spec()["acme"]["solvers"])
    if "dns01" in solver and "rfc2136" not in solver["dns01"]
}
"""Every DNS-01 solver of the pasted cert-manager specs but rfc2136 ones, which the Challenge
shows as acmeflow reads them (tsigAlgorithm in capitals, its default written out)."""


@pytest.mark.parametrize("case", sorted(PASTED_DNS01))
def test_the_challenge_the_bridge_writes_shows_the_solver_as_the_issuer_had_it(
    kubectl: Kubectl, namespace: str, case: str
) -> None:
    written = PASTED_DNS01[case]
    spec = IssuerSpec.model_validate(
        {"acme": {**issuer(namespace, {})["spec"]["acme"], "solvers": [written]}}
    )
    [config] = issuer_config_from_spec(spec, name="Issuer", secret_namespace=namespace).solvers
    challenge = Challenge(
        metadata=ObjectMeta(name=f"dns01-{uuid.uuid4().hex[:8]}", namespace=namespace),
        spec=ChallengeSpec(
            url="https://acme.example/chall/1",
            authorization_url="https://acme.example/authz/1",
            dns_name="www.example.com",
            type="DNS-01",
            token="token",
            key="txt-value",
            solver=solver_resource(config),
            issuer_ref=IssuerRef(name="letsencrypt"),
        ),
    )

    created = kubectl.create(challenge.to_api(), check=False)

    assert created.returncode == 0, created.stderr
    stored = kubectl.get("challenges.acmeflow.io", challenge.metadata.name, namespace=namespace)
    shown = {**written["dns01"]}
    if shown.get("cnameStrategy") == "None":
        del shown["cnameStrategy"]  # the default, written out by the Issuer only
    assert stored["spec"]["solver"]["dns01"] == shown
