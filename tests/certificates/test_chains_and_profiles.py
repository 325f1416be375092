"""Which chain is stored and which ACME profile is asked for, as the issued certificate shows.

Pebble with alternate roots offers every certificate under each root (``Link: alternate``);
the Issuer's ``preferredChain`` picks the chain whose top certificate a root of that common
name issued, as cert-manager does, and keeps the default chain when none matches. Pebble with
two profiles of different lifetimes shows which profile an order named: the Issuer's, or the
Certificate's over it; a profile the CA does not offer is the CA's refusal, named.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import PolicyBuilder, Store

from acmeflow.devstack.pebble import PebbleEndpoints
from acmeflow.devstack.stack import StackInfo
from tests.bridge.bridge_harness import (
    BridgeProcess,
    certificate_manifest,
    condition_of,
    tls_secret,
    wait_for,
)
from tests.certificates.names_fixtures import (
    LONG_PROFILE_S,
    SHORT_PROFILE_S,
    issued_chain,
    issuer_on,
    pebble_ca,
)
from tests.k8s.kube_helpers import Kubectl

pytestmark = pytest.mark.stack


def _common_name(name: x509.Name) -> str:
    return str(name.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def _chains_to(chain: list[x509.Certificate], root: x509.Certificate, dns_name: str) -> bool:
    verifier = PolicyBuilder().store(Store([root])).build_server_verifier(x509.DNSName(dns_name))
    try:
        verifier.verify(chain[0], chain[1:])
    except x509.verification.VerificationError:
        return False
    return True


def test_the_preferred_chain_is_stored_and_an_unknown_one_keeps_the_default(
    stack: StackInfo,
    kubectl: Kubectl,
    bridge: BridgeProcess,
    order_worker: None,
    namespace: str,
    chains_pebble: PebbleEndpoints,
) -> None:
    roots = [pebble_ca(stack, chains_pebble, "roots", index) for index in range(3)]
    preferred = _common_name(roots[2].subject)
    assert len({_common_name(root.subject) for root in roots}) == 3
    kubectl.create(
        issuer_on(stack, namespace, "preferring", chains_pebble, preferredChain=preferred)
    )
    kubectl.create(
        issuer_on(stack, namespace, "unmatched", chains_pebble, preferredChain="No Such Root")
    )
    names = {"preferred": "chains-preferred.example.com", "default": "chains-default.example.com"}
    kubectl.create(
        certificate_manifest(namespace, "preferred", [names["preferred"]], issuer="preferring")
    )
    kubectl.create(
        certificate_manifest(namespace, "default", [names["default"]], issuer="unmatched")
    )

    chosen = issued_chain(kubectl, namespace, "preferred")
    assert _common_name(chosen[-1].issuer) == preferred
    assert chosen[1:] == [pebble_ca(stack, chains_pebble, "intermediates", 2)]
    assert _chains_to(chosen, roots[2], names["preferred"])
    assert not _chains_to(chosen, roots[0], names["preferred"])

    kept = issued_chain(kubectl, namespace, "default")
    assert kept[1:] == [pebble_ca(stack, chains_pebble, "intermediates", 0)]
    assert _chains_to(kept, roots[0], names["default"])


def _lifetime_s(chain: list[x509.Certificate]) -> float:
    leaf = chain[0]
    lifetime: datetime.timedelta = leaf.not_valid_after_utc - leaf.not_valid_before_utc
    return lifetime.total_seconds()


def test_the_lifetime_follows_the_issuers_profile_or_the_certificates_over_it(
    stack: StackInfo,
    kubectl: Kubectl,
    bridge: BridgeProcess,
    order_worker: None,
    namespace: str,
    profiles_pebble: PebbleEndpoints,
) -> None:
    kubectl.create(issuer_on(stack, namespace, "short", profiles_pebble, profile="short"))
    kubectl.create(
        certificate_manifest(namespace, "by-issuer", ["profile-issuer.example.com"], issuer="short")
    )
    kubectl.create(
        certificate_manifest(
            namespace,
            "by-certificate",
            ["profile-cert.example.com"],
            issuer="short",
            profile="long",
        )
    )

    # Pebble's notAfter is one second short of notBefore + the profile's validity.
    assert _lifetime_s(issued_chain(kubectl, namespace, "by-issuer")) == SHORT_PROFILE_S - 1
    assert _lifetime_s(issued_chain(kubectl, namespace, "by-certificate")) == LONG_PROFILE_S - 1


def test_a_profile_the_ca_does_not_offer_is_the_cas_refusal_named(
    stack: StackInfo,
    kubectl: Kubectl,
    bridge: BridgeProcess,
    order_worker: None,
    namespace: str,
    profiles_pebble: PebbleEndpoints,
) -> None:
    kubectl.create(issuer_on(stack, namespace, "short", profiles_pebble, profile="short"))
    kubectl.create(
        certificate_manifest(
            namespace, "no-such", ["profile-none.example.com"], issuer="short", profile="tlsserver"
        )
    )

    def failed() -> dict[str, Any] | None:
        ready = condition_of(kubectl.get("afcert", "no-such", namespace=namespace), "Ready")
        return ready if ready.get("reason") == "Failed" else None

    ready = wait_for(failed, "the Certificate's Ready condition to say Failed", 90.0)
    assert ready["status"] == "False"
    assert (
        "ACME server refused the request (invalidProfile): Order includes unrecognized profile "
        'name "tlsserver"' in ready["message"]
    ), ready
    assert tls_secret(kubectl, namespace, "no-such-tls") is None
