"""A pasted cert-manager DNS-01 solver block becomes exactly the contract its provider reads.

Each block is written as cert-manager's documentation shows it. The contract is what travels
in workflow history to the publishers (activities/dns01_*.py): Secret references only, in
the Issuer's namespace (a ClusterIssuer's: the cluster resource namespace). The Challenge
then shows the block as the Issuer had it. The lexicon option names are checked against
the installed dns-lexicon, whose providers read them.
"""

from __future__ import annotations

import argparse
import copy
from typing import Any

import pytest
from lexicon._private.discovery import find_providers, load_provider_module

from acmeflow.contracts.issuer import Dns01Webhook, Lexicon, Route53, SolverConfig
from acmeflow.contracts.secrets import SecretRef
from acmeflow.crds.models import AcmeSolver, ClusterIssuer, Issuer
from acmeflow.k8s_bridge.challenge_resources import solver_resource
from acmeflow.k8s_bridge.issuer_translation import InvalidIssuerError, issuer_config
from acmeflow.k8s_bridge.lexicon_mappings import MAPPINGS

NAMESPACE = "web"


def web(name: str, key: str = "") -> SecretRef:
    return SecretRef(namespace=NAMESPACE, name=name, key=key)


def issuer(dns01: dict[str, Any], *, kind: str = "Issuer") -> Issuer | ClusterIssuer:
    metadata: dict[str, str] = {"name": "letsencrypt"}
    if kind == "Issuer":
        metadata["namespace"] = NAMESPACE
    document = {
        "apiVersion": "acmeflow.io/v1alpha1",
        "kind": kind,
        "metadata": metadata,
        "spec": {
            "acme": {
                "server": "https://acme-v02.api.letsencrypt.org/directory",
                "privateKeySecretRef": {"name": "letsencrypt-account"},
                "solvers": [{"dns01": copy.deepcopy(dns01)}],
            }
        },
    }
    model = Issuer if kind == "Issuer" else ClusterIssuer
    return model.model_validate(document)


def translated(dns01: dict[str, Any], *, kind: str = "Issuer") -> SolverConfig:
    [solver] = issuer_config(issuer(dns01, kind=kind)).solvers
    return solver


CLOUDFLARE_TOKEN = {
    "cloudflare": {"apiTokenSecretRef": {"name": "cloudflare-api-token-secret", "key": "api-token"}}
}
CLOUDFLARE_KEY = {
    "cloudflare": {
        "email": "my-cloudflare-acc@example.com",
        "apiKeySecretRef": {"name": "cloudflare-api-key-secret", "key": "api-key"},
    }
}
CLOUD_DNS = {
    "cloudDNS": {
        "project": "my-project-id",
        "hostedZoneName": "my-zone",
        "serviceAccountSecretRef": {"name": "clouddns-dns01-solver-svc-acct", "key": "key.json"},
    }
}
AZURE_DNS = {
    "azureDNS": {
        "clientID": "AZURE_CERT_MANAGER_SP_APP_ID",
        "clientSecretSecretRef": {"name": "azuredns-config", "key": "client-secret"},
        "subscriptionID": "AZURE_SUBSCRIPTION_ID",
        "tenantID": "AZURE_TENANT_ID",
        "resourceGroupName": "AZURE_DNS_ZONE_RESOURCE_GROUP",
        "hostedZoneName": "example.com",
        "environment": "AzurePublicCloud",
    }
}
DIGITALOCEAN = {
    "digitalocean": {"tokenSecretRef": {"name": "digitalocean-dns", "key": "access-token"}}
}
ROUTE53 = {
    "route53": {
        "region": "eu-central-1",
        "hostedZoneID": "DIKER8JEXAMPLE",
        "accessKeyIDSecretRef": {"name": "prod-route53-credentials-secret", "key": "access-key-id"},
        "secretAccessKeySecretRef": {
            "name": "prod-route53-credentials-secret",
            "key": "secret-access-key",
        },
        "role": "arn:aws:iam::YYYYYYYYYYYY:role/dns-manager",
    }
}
WEBHOOK = {
    "webhook": {
        "groupName": "acme.yourdomain.tld",
        "solverName": "hetzner",
        "config": {
            "secretName": "hetzner-secret",
            "zoneName": "example.com",
            "apiUrl": "https://dns.hetzner.com/api/v1",
        },
    }
}
LEXICON = {
    "lexicon": {
        "provider": "powerdns",
        "zone": "example.net",
        "credentialsSecretRef": {"name": "powerdns-api"},
        "options": {"pdns_server": "http://pdns.dns.svc:8081", "pdns_server_id": "localhost"},
    }
}


def test_cloudflare_api_token_is_lexicons_auth_token_alone() -> None:
    assert translated(CLOUDFLARE_TOKEN) == SolverConfig(
        lexicon=Lexicon(
            provider="cloudflare",
            secret_options={"auth_token": web("cloudflare-api-token-secret", "api-token")},
            shown_as="cloudflare",
        )
    )


def test_cloudflare_global_key_is_auth_token_with_the_email_as_auth_username() -> None:
    assert translated(CLOUDFLARE_KEY) == SolverConfig(
        lexicon=Lexicon(
            provider="cloudflare",
            options={"auth_username": "my-cloudflare-acc@example.com"},
            secret_options={"auth_token": web("cloudflare-api-key-secret", "api-key")},
            shown_as="cloudflare",
        )
    )


def test_cloudflare_email_beside_a_token_is_not_taken_for_a_global_key() -> None:
    """lexicon switches to Global-key headers when auth_username is set; cert-manager does not."""
    block = copy.deepcopy(CLOUDFLARE_TOKEN)
    block["cloudflare"]["email"] = "ops@example.com"

    lexicon = translated(block).lexicon

    assert lexicon is not None
    assert lexicon.options == {}
    assert lexicon.shown_fields == {"email": "ops@example.com"}


def test_cloud_dns_is_googleclouddns_with_the_service_account_key() -> None:
    assert translated(CLOUD_DNS) == SolverConfig(
        lexicon=Lexicon(
            provider="googleclouddns",
            secret_options={
                "auth_service_account_info": web("clouddns-dns01-solver-svc-acct", "key.json")
            },
            shown_as="cloudDNS",
            shown_fields={"project": "my-project-id", "hostedZoneName": "my-zone"},
        )
    )


def test_azure_dns_is_lexicons_azure_with_a_service_principal_and_the_zone() -> None:
    assert translated(AZURE_DNS) == SolverConfig(
        lexicon=Lexicon(
            provider="azure",
            zone="example.com",
            options={
                "auth_client_id": "AZURE_CERT_MANAGER_SP_APP_ID",
                "auth_tenant_id": "AZURE_TENANT_ID",
                "auth_subscription_id": "AZURE_SUBSCRIPTION_ID",
                "resource_group": "AZURE_DNS_ZONE_RESOURCE_GROUP",
            },
            secret_options={"auth_client_secret": web("azuredns-config", "client-secret")},
            shown_as="azureDNS",
            shown_fields={"environment": "AzurePublicCloud"},
        )
    )


def test_digitalocean_token_is_lexicons_auth_token() -> None:
    assert translated(DIGITALOCEAN) == SolverConfig(
        lexicon=Lexicon(
            provider="digitalocean",
            secret_options={"auth_token": web("digitalocean-dns", "access-token")},
            shown_as="digitalocean",
        )
    )


def test_acmeflows_lexicon_block_names_a_whole_secret_of_options() -> None:
    assert translated(LEXICON) == SolverConfig(
        lexicon=Lexicon(
            provider="powerdns",
            zone="example.net",
            options={"pdns_server": "http://pdns.dns.svc:8081", "pdns_server_id": "localhost"},
            options_secret=web("powerdns-api"),
            shown_as="lexicon",
        )
    )


def test_route53_keys_in_a_secret_and_a_role() -> None:
    assert translated(ROUTE53) == SolverConfig(
        route53=Route53(
            region="eu-central-1",
            hosted_zone_id="DIKER8JEXAMPLE",
            access_key_id_secret=web("prod-route53-credentials-secret", "access-key-id"),
            secret_access_key=web("prod-route53-credentials-secret", "secret-access-key"),
            role="arn:aws:iam::YYYYYYYYYYYY:role/dns-manager",
            ambient=False,
        )
    )


def test_a_cluster_issuer_may_use_ambient_aws_credentials_and_its_own_namespace() -> None:
    config = issuer_config(
        issuer({"route53": {"region": "us-east-1"}}, kind="ClusterIssuer"),
        cluster_resource_namespace="acmeflow-system",
    )

    assert config.solvers[0].route53 == Route53(region="us-east-1", ambient=True)


def test_a_namespaced_issuer_without_aws_credentials_is_refused_as_cert_manager_would() -> None:
    with pytest.raises(InvalidIssuerError) as refused:
        translated({"route53": {"region": "us-east-1"}})

    assert str(refused.value) == (
        "Issuer web/letsencrypt: solvers[0].dns01.route53: no credentials named, and only a "
        "ClusterIssuer may use the worker's own AWS credentials (as in cert-manager): set "
        "accessKeyID (or accessKeyIDSecretRef) and secretAccessKeySecretRef, or use a "
        "ClusterIssuer"
    )


@pytest.mark.parametrize(
    ("kind", "namespace", "ambient"),
    [("Issuer", NAMESPACE, False), ("ClusterIssuer", "acmeflow", True)],
)
def test_webhook_config_passes_unchanged_with_cert_managers_namespace_and_ambient_rule(
    kind: str, namespace: str, ambient: bool
) -> None:
    assert translated(WEBHOOK, kind=kind) == SolverConfig(
        webhook=Dns01Webhook(
            group_name="acme.yourdomain.tld",
            solver_name="hetzner",
            config_json='{"secretName": "hetzner-secret", "zoneName": "example.com", '
            '"apiUrl": "https://dns.hetzner.com/api/v1"}',
            resource_namespace=namespace,
            allow_ambient_credentials=ambient,
        )
    )


def test_cname_strategy_follow_is_cname_follow() -> None:
    followed = translated({**DIGITALOCEAN, "cnameStrategy": "Follow"})
    not_followed = translated({**DIGITALOCEAN, "cnameStrategy": "None"})

    assert (followed.cname_follow, not_followed.cname_follow) == (True, False)


@pytest.mark.parametrize(
    ("dns01", "message"),
    [
        (
            {"akamai": {"serviceConsumerDomain": "akab.luna.akamaiapis.net"}},
            "dns01.akamai is not supported: acmeflow reaches the long tail of DNS providers "
            "through dns-lexicon, which has no Akamai Edge DNS provider",
        ),
        (
            {"cloudDNS": {"project": "p"}},
            "dns01.cloudDNS needs serviceAccountSecretRef in acmeflow",
        ),
        (
            {"azureDNS": {**AZURE_DNS["azureDNS"], "managedIdentity": {"clientID": "c"}}},
            "azureDNS.managedIdentity is not supported",
        ),
        (
            {"cloudflare": {"email": "a@example.com"}},
            "dns01.cloudflare: set exactly one of apiKeySecretRef or apiTokenSecretRef",
        ),
        (
            {**ROUTE53, **DIGITALOCEAN},
            "set exactly one provider (rfc2136, webhook, route53, lexicon, cloudflare, cloudDNS, "
            "azureDNS, digitalocean), not route53 and digitalocean",
        ),
    ],
    ids=["akamai", "cloud-dns-ambient", "azure-managed-identity", "cloudflare-no-key", "two"],
)
def test_what_admission_refuses_is_refused_by_the_bridge_too(
    dns01: dict[str, Any], message: str
) -> None:
    """An Issuer stored before the CRD refused it gets the same reason on its Ready condition."""
    with pytest.raises(InvalidIssuerError) as refused:
        translated(dns01)

    assert message in str(refused.value)


PASTED = {
    "cloudflare-token": CLOUDFLARE_TOKEN,
    "cloudflare-key": CLOUDFLARE_KEY,
    "cloud-dns": CLOUD_DNS,
    "azure-dns": AZURE_DNS,
    "digitalocean": DIGITALOCEAN,
    "route53": ROUTE53,
    "webhook": WEBHOOK,
    "lexicon": LEXICON,
    "followed": {**CLOUDFLARE_TOKEN, "cnameStrategy": "Follow"},
}


@pytest.mark.parametrize("dns01", PASTED.values(), ids=PASTED.keys())
def test_the_challenge_shows_the_block_the_issuer_had(dns01: dict[str, Any]) -> None:
    shown: AcmeSolver = solver_resource(translated(dns01))

    assert shown.to_api() == {"dns01": dns01}


@pytest.mark.parametrize("mapping", MAPPINGS, ids=lambda m: f"{m.block}-{m.when}")
def test_every_mapped_option_is_one_lexicons_provider_reads(mapping: Any) -> None:
    assert find_providers()[mapping.provider], f"lexicon {mapping.provider} is not installed"
    parser = argparse.ArgumentParser()
    load_provider_module(mapping.provider).Provider.configure_parser(parser)
    options = {action.dest for action in parser._actions}

    assert {f.option for f in mapping.fields} <= options


def test_lexicon_has_no_akamai_provider_so_the_refusal_is_still_true() -> None:
    assert not any("akamai" in name or "edgedns" in name for name in find_providers())
