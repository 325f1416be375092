"""Extra Pebbles for the names, chains and profiles tests, Issuers of them, what they issued."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from acmeflow.activities.csr import load_private_key
from acmeflow.devstack.pebble import PebbleEndpoints, PebbleOptions, _management_get
from acmeflow.devstack.stack import StackInfo
from tests.bridge.bridge_harness import issuer_manifest, tls_secret, wait_for_ready
from tests.bridge.test_certificates import _extra_pebble
from tests.k8s.kube_helpers import Kubectl

SHORT_PROFILE_S, LONG_PROFILE_S = 3 * 86400, 7 * 86400
"""Lifetimes of the profiles Pebble offers: far apart, and long enough that no renewal
starts during a test."""


@pytest.fixture(scope="module")
def promoting_pebble(stack: StackInfo) -> Iterator[PebbleEndpoints]:
    """A CA that writes a common name into certificates, as Let's Encrypt's classic profile."""
    yield from _extra_pebble(stack, PebbleOptions(name="pebble-names", promote_common_name=True))


@pytest.fixture(scope="module")
def chains_pebble(stack: StackInfo) -> Iterator[PebbleEndpoints]:
    """A CA offering each certificate under its default root and two alternate roots."""
    yield from _extra_pebble(stack, PebbleOptions(name="pebble-chains", alternate_roots=2))


@pytest.fixture(scope="module")
def profiles_pebble(stack: StackInfo) -> Iterator[PebbleEndpoints]:
    """A CA with two ACME profiles of different lifetimes (and no default one)."""
    options = PebbleOptions(
        name="pebble-profiles", profiles={"short": SHORT_PROFILE_S, "long": LONG_PROFILE_S}
    )
    yield from _extra_pebble(stack, options)


def issuer_on(
    stack: StackInfo, namespace: str, name: str, pebble: PebbleEndpoints, **acme: str
) -> dict[str, Any]:
    """An Issuer of ``pebble`` solving HTTP-01, with more of ``spec.acme`` (profile, ...)."""
    manifest = issuer_manifest(stack, namespace, name, server=pebble.directory_url)
    manifest["spec"]["acme"] |= acme
    return manifest


def pebble_ca(
    stack: StackInfo, pebble: PebbleEndpoints, kind: Literal["roots", "intermediates"], index: int
) -> x509.Certificate:
    """Root or intermediate ``index`` of ``pebble``, as its management API serves it: chain
    ``index`` (0 is the default chain, the others its alternates)."""
    pem = _management_get(f"{pebble.management_url}/{kind}/{index}", stack.acme_ca_bundle)
    return x509.load_pem_x509_certificate(pem)


def issued_chain(kubectl: Kubectl, namespace: str, name: str) -> list[x509.Certificate]:
    """The chain in the Secret of Certificate ``name`` once Ready, its key the Secret's."""
    wait_for_ready(kubectl, "certificate", namespace, name)
    secret = tls_secret(kubectl, namespace, f"{name}-tls")
    assert secret is not None
    chain = x509.load_pem_x509_certificates(secret["tls.crt"])
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    pem = serialization.Encoding.PEM
    key = load_private_key(secret["tls.key"])
    assert chain[0].public_key().public_bytes(pem, public) == key.public_key().public_bytes(
        pem, public
    )
    return chain
