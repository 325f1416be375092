"""Signing cert-manager CertificateRequests: which are acmeflow's, the Order each becomes,
and the status each step writes; no servers."""

from __future__ import annotations

import argparse
import base64
import datetime
from typing import Any
from unittest.mock import MagicMock

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from acmeflow.activities.csr import build_csr, generate_private_key
from acmeflow.contracts.names import RequestedNames
from acmeflow.contracts.progress import (
    ConditionStatus,
    EventReason,
    EventType,
    ObjectKind,
    OrderEvent,
)
from acmeflow.crds import models as crd
from acmeflow.crds.cert_manager import (
    CertificateRequest,
    CertificateRequestStatus,
)
from acmeflow.k8s_bridge import certificate_request_status as request_status
from acmeflow.k8s_bridge.bridge import Bridge
from acmeflow.k8s_bridge.certificate_requests import (
    order_for,
    requested_certificate,
    requesting,
    signed_here,
)
from acmeflow.k8s_bridge.config import BridgeConfig
from acmeflow.k8s_bridge.event_recorder import InvolvedObject, event_name
from acmeflow.k8s_bridge.kube_api import KubeApi
from acmeflow.k8s_bridge.status_writes import write_status
from acmeflow.plumbing.settings import add_config_flags, load_settings

NOW = datetime.datetime(2026, 12, 1, 12, 0, tzinfo=datetime.UTC)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _csr(names: list[str], common_name: str = "") -> str:
    return build_csr(
        generate_private_key("ECDSA"), RequestedNames(common_name=common_name, dns_names=names)
    )


def _request(
    csr_pem: str, *, name: str = "web-1", annotations: dict[str, str] | None = None, **ref: str
) -> CertificateRequest:
    return CertificateRequest.model_validate(
        {
            "metadata": {
                "name": name,
                "namespace": "team-a",
                "uid": "uid-1",
                "annotations": annotations or {},
            },
            "spec": {
                "request": _b64(csr_pem),
                "issuerRef": {"name": "pebble", "group": "acmeflow.io", **ref},
                "duration": "2160h0m0s",
            },
        }
    )


def _condition(type_: str, status: str = "True", reason: str = "cert-manager.io") -> crd.Condition:
    return crd.Condition(type=type_, status=ConditionStatus(status), reason=reason)


@pytest.mark.parametrize(
    ("ref", "ours"),
    [
        ({"group": "acmeflow.io", "kind": "Issuer"}, True),
        ({"group": "acmeflow.io", "kind": "ClusterIssuer"}, True),
        ({"group": "acmeflow.io"}, True),  # an empty kind is an Issuer, as in cert-manager
        ({"group": "cert-manager.io", "kind": "Issuer"}, False),
        ({"kind": "Issuer"}, False),  # an empty group is cert-manager's own
        ({"group": "acmeflow.io", "kind": "Certificate"}, False),
    ],
)
def test_only_requests_naming_an_acmeflow_issuer_are_signed(
    ref: dict[str, str], ours: bool
) -> None:
    assert signed_here({"spec": {"issuerRef": {"name": "x", **ref}}}) is ours


def test_the_csr_is_read_as_cert_manager_stores_it() -> None:
    csr = _csr(["www.example.com", "example.com"], common_name="example.com")
    wanted = requested_certificate(_b64(csr))
    assert wanted.csr_pem == csr
    assert wanted.dns_names == ["www.example.com", "example.com"]
    assert wanted.common_name == "example.com"
    with pytest.raises(ValueError, match="not base64 of a PEM certificate signing request"):
        requested_certificate("not base64!")
    with pytest.raises(ValueError, match="not base64 of a PEM certificate signing request"):
        requested_certificate(_b64("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n"))


def test_the_order_is_owned_by_the_request_and_named_from_it() -> None:
    csr = _csr(["www.example.com"])
    request = _request(csr)
    order = order_for(request, requested_certificate(request.spec.request))
    again = order_for(request, requested_certificate(request.spec.request))
    assert order.metadata.name == again.metadata.name
    assert order.metadata.name.startswith("web-1-")
    assert order.metadata.name.removeprefix("web-1-").isdigit()
    [owner] = order.metadata.owner_references or []
    assert (owner.api_version, owner.kind, owner.name, owner.uid) == (
        "cert-manager.io/v1",
        "CertificateRequest",
        "web-1",
        "uid-1",
    )
    assert owner.controller is True and owner.block_owner_deletion is True
    # The wire form is a valid acmeflow Order: read back through the model the CRD comes from.
    sent = crd.Order.model_validate(order.to_api())
    assert sent.spec.request == csr
    assert sent.spec.issuer_ref == crd.IssuerRef(name="pebble", kind="Issuer")
    assert sent.spec.dns_names == ["www.example.com"]
    assert sent.spec.duration == "2160h0m0s"


def test_a_new_revision_or_another_csr_is_another_order_and_long_names_are_cut() -> None:
    csr = _csr(["www.example.com"])
    first = order_for(_request(csr), requested_certificate(_b64(csr))).metadata.name
    revised = _request(csr, annotations={"cert-manager.io/certificate-revision": "2"})
    assert order_for(revised, requested_certificate(_b64(csr))).metadata.name != first
    other = _csr(["www.example.com"])
    assert order_for(_request(other), requested_certificate(_b64(other))).metadata.name != first
    long = _request(csr, name="a" * 253, kind="ClusterIssuer")
    order = order_for(long, requested_certificate(_b64(csr)))
    assert len(order.metadata.name) <= 63  # also a label value on its Challenges
    assert order.spec.issuer_ref.kind == "ClusterIssuer"


def test_an_order_change_requeues_the_request_that_controls_it() -> None:
    def order(kind: str, api_version: str) -> dict[str, Any]:
        owner = {"kind": kind, "apiVersion": api_version, "name": "web-1", "controller": True}
        return {"metadata": {"namespace": "team-a", "ownerReferences": [owner]}}

    assert requesting(order("CertificateRequest", "cert-manager.io/v1")) == "team-a/web-1"
    assert requesting(order("Certificate", "acmeflow.io/v1alpha1")) is None
    assert requesting({"metadata": {"namespace": "team-a"}}) is None


@pytest.mark.parametrize(
    ("status", "finished"),
    [
        (CertificateRequestStatus(conditions=[_condition("Ready", "True", "Issued")]), True),
        (CertificateRequestStatus(conditions=[_condition("Ready", "False", "Failed")]), True),
        (CertificateRequestStatus(conditions=[_condition("Ready", "False", "Denied")]), True),
        (CertificateRequestStatus(failure_time=NOW), True),
        (CertificateRequestStatus(conditions=[_condition("Ready", "False", "Pending")]), False),
        (CertificateRequestStatus(conditions=[_condition("Approved")]), False),
        (CertificateRequestStatus(), False),
    ],
)
def test_a_finished_request_is_never_signed_again(
    status: CertificateRequestStatus, finished: bool
) -> None:
    assert request_status.finished(status) is finished


def test_a_denied_request_fails_with_the_approvers_words_and_keeps_its_conditions() -> None:
    denied = crd.Condition(
        type="Denied", status=ConditionStatus.TRUE, reason="policy", message="not this team"
    )
    status = CertificateRequestStatus(conditions=[denied])
    written = request_status.denied(status, generation=1, at=NOW)
    assert written.failure_time == NOW
    [kept, ready] = written.conditions or []
    assert kept == denied
    assert (ready.type, ready.status, ready.reason) == ("Ready", ConditionStatus.FALSE, "Denied")
    assert ready.message == (
        "The request was denied by an approver: not this team; acmeflow does not sign it"
    )


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    *,
    issuer: str,
    signer: ec.EllipticCurvePrivateKey,
) -> x509.Certificate:
    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    return (
        x509.CertificateBuilder()
        .subject_name(name(subject))
        .issuer_name(name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW)
        .not_valid_after(NOW + datetime.timedelta(days=1))
        .sign(signer, hashes.SHA256())
    )


def _pem(*certificates: x509.Certificate) -> str:
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certificates)


def test_issued_carries_the_chain_and_the_ca_only_when_the_chain_ends_in_a_root() -> None:
    root_key, leaf_key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    root = _certificate("Root", root_key, issuer="Root", signer=root_key)
    leaf = _certificate("www.example.com", leaf_key, issuer="Root", signer=root_key)
    approved = CertificateRequestStatus(conditions=[_condition("Approved")])

    with_root = request_status.issued(approved, chain_pem=_pem(leaf, root), order="o", generation=1)
    assert with_root.certificate == _b64(_pem(leaf, root))
    assert with_root.ca == _b64(_pem(root))
    [kept, ready] = with_root.conditions or []
    assert kept.type == "Approved"
    assert (ready.status, ready.reason) == (ConditionStatus.TRUE, "Issued")

    # An intermediate that merely claims the root's name is not taken for it.
    impostor = _certificate("Root", leaf_key, issuer="Root", signer=root_key)
    assert (
        request_status.issued(approved, chain_pem=_pem(leaf, impostor), order="o", generation=1).ca
        is None
    )
    without_root = request_status.issued(approved, chain_pem=_pem(leaf), order="o", generation=1)
    assert without_root.ca is None
    assert "ca" not in without_root.to_api()


def test_request_status_is_written_to_cert_manager_guarded_and_only_when_changed() -> None:
    api = MagicMock()
    metadata = crd.ObjectMeta(name="web-1", namespace="team-a", resource_version="42")
    current = CertificateRequestStatus(conditions=[_condition("Approved")])
    desired = request_status.pending(current, message="Waiting", generation=1)
    write = {
        "plural": "certificaterequests",
        "metadata": metadata,
        "api_version": "cert-manager.io/v1",
        "guarded": True,
    }
    assert write_status(api, current=current, desired=desired, **write)
    stored = CertificateRequestStatus.model_validate(desired.to_api())
    assert not write_status(api, current=stored, desired=desired, **write)
    [call] = api.patch_status.call_args_list
    plural, namespace, name, patch = call.args
    assert (plural, namespace, name) == ("certificaterequests", "team-a", "web-1")
    assert call.kwargs == {"api_version": "cert-manager.io/v1"}
    assert patch["metadata"] == {"resourceVersion": "42"}
    assert [c["type"] for c in patch["status"]["conditions"]] == ["Approved", "Ready"]


@pytest.mark.parametrize("external_issuer", [False, True])
def test_certificate_requests_are_watched_only_in_external_issuer_mode(
    external_issuer: bool,
) -> None:
    """Without cert-manager's CRDs a bridge that listed them would never start."""
    api = KubeApi(api_client=MagicMock(), core=MagicMock(), custom=MagicMock())
    bridge = Bridge(BridgeConfig(external_issuer=external_issuer), api, MagicMock())
    assert ("CertificateRequest" in bridge.informers) is external_issuer


def test_external_issuer_mode_is_a_flag_and_an_environment_variable() -> None:
    parser = argparse.ArgumentParser()
    add_config_flags(parser, BridgeConfig)
    flagged = load_settings(BridgeConfig, parser.parse_args(["--external-issuer", "true"]), env={})
    assert flagged.external_issuer is True
    from_env = load_settings(
        BridgeConfig, parser.parse_args([]), env={"ACMEFLOW_EXTERNAL_ISSUER": "true"}
    )
    assert from_env.external_issuer is True
    assert load_settings(BridgeConfig, parser.parse_args([]), env={}).external_issuer is False


def test_a_request_with_a_long_name_still_gets_its_event() -> None:
    """Event names hold at most 253 characters, as do request names."""
    event = OrderEvent(
        seq=0,
        at="2026-12-01T12:00:00+00:00",
        kind=ObjectKind.ORDER,
        object_name="o",
        type=EventType.NORMAL,
        reason=EventReason.ORDER_CREATED,
        message='Created Order resource "o"',
    )

    def named(name: str) -> str:
        involved = InvolvedObject(kind="CertificateRequest", namespace="n", name=name, uid="u")
        return event_name(involved, event)

    long_a, long_b = "a" * 252 + "x", "a" * 252 + "y"
    assert len(named(long_a)) <= 253
    assert named(long_a) != named(long_b)
    assert named("web-1").startswith("web-1.")  # short names are kept whole
