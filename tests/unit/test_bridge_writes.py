"""What the bridge writes to Kubernetes, built from the models it reads with; no servers.

Each write is checked the way the API server would see it (the wire form), and read back
through the same model, so a field the bridge sends but the model (and so the CRD) lacks
fails here rather than being pruned in a cluster.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from acmeflow.contracts.challenge import ChallengeSpec
from acmeflow.contracts.issuer import Http01Ingress, Rfc2136, SolverConfig, SolverSelector
from acmeflow.contracts.progress import (
    AuthorizationProgress,
    CertificateStatus,
    CertificateUpdate,
    ChallengeProgress,
    ChallengeRef,
    EventReason,
    EventType,
    IssuerStatus,
    ObjectKind,
    OrderEvent,
    OrderProgress,
)
from acmeflow.contracts.secrets import SecretRef
from acmeflow.contracts.states import ChallengeType, OrderState
from acmeflow.crds import models as crd
from acmeflow.k8s_bridge.challenge_resources import challenge_resource, challenge_status
from acmeflow.k8s_bridge.conditions import not_ready
from acmeflow.k8s_bridge.event_recorder import InvolvedObject, event_resource
from acmeflow.k8s_bridge.issuer_translation import solver_config
from acmeflow.k8s_bridge.order_mirror import order_status
from acmeflow.k8s_bridge.resource_mirrors import certificate_status, issuer_status
from acmeflow.k8s_bridge.status_writes import merge_patch, status_patch, write_status

UTC = datetime.UTC
ORDER = crd.Order(
    metadata=crd.ObjectMeta(name="web-123", namespace="team-a", uid="order-uid"),
    spec=crd.OrderSpec(
        request="-----BEGIN CERTIFICATE REQUEST-----",
        issuer_ref=crd.IssuerRef(name="le", kind="ClusterIssuer"),
        dns_names=["www.example.com"],
    ),
)


def progress_of(state: str = "pending", **changes: Any) -> OrderProgress:
    values: dict[str, Any] = {
        "state": state,
        "url": "https://ca.test/order/1",
        "finalize_url": "https://ca.test/order/1/finalize",
        "authorizations": [
            AuthorizationProgress(
                url="https://ca.test/authz/1",
                identifier="www.example.com",
                wildcard=False,
                initial_state="pending",
                challenges=[
                    ChallengeRef(
                        url="https://ca.test/chall/1", token="t1", type=ChallengeType.HTTP01
                    )
                ],
            )
        ],
        **changes,
    }
    return OrderProgress(**values)


def challenge_progress(solver: SolverConfig, *, state: str = "pending") -> ChallengeProgress:
    spec = ChallengeSpec(
        name="web-123-0",
        namespace="team-a",
        order_name="web-123",
        dns_name="www.example.com",
        wildcard=False,
        type=solver.challenge_type,
        token="t1",
        key="t1.thumbprint",
        url="https://ca.test/chall/1",
        authorization_url="https://ca.test/authz/1",
        solver=solver,
    )
    return ChallengeProgress(spec=spec, state=state, processing=True, reason="Presenting")


def read_back(model: type[crd.CrdModel], sent: dict[str, Any]) -> Any:
    """What the API server would return for ``sent``, parsed as the bridge parses it."""
    return model.model_validate(sent)


# --- One function writes status, as a merge patch of what changed --------------------------


def test_merge_patch_holds_only_what_changes() -> None:
    current = {"state": "pending", "reason": "", "url": "u", "acme": {"uri": "a", "x": 1}}
    desired = {"state": "valid", "reason": "", "url": None, "acme": {"uri": "a"}, "new": [1]}
    assert merge_patch(current, desired) == {"state": "valid", "url": None, "new": [1]}
    assert merge_patch(current, {"acme": {"uri": "b"}}) == {"acme": {"uri": "b"}}
    assert merge_patch(current, {"state": "pending", "gone": None}) == {}


def test_a_status_the_object_already_shows_is_not_written_again() -> None:
    """A snapshot delivered twice, or after a bridge restart, costs no API call."""
    desired = order_status(progress_of("valid", certificate="PEM", failure_time=""))
    stored = read_back(crd.OrderStatus, desired.to_api())
    assert status_patch(stored, desired) == {}


def test_a_partial_status_leaves_the_other_fields_alone() -> None:
    stored = order_status(progress_of("pending"))
    patch = status_patch(stored, crd.OrderStatus(reason="Waiting for Issuer"))
    assert patch == {"reason": "Waiting for Issuer"}


def test_a_field_the_snapshot_no_longer_has_is_cleared() -> None:
    """A reset workflow starts a new ACME order: the old URL and authorizations must go."""
    stored = order_status(progress_of("pending"))
    patch = status_patch(stored, order_status(OrderProgress(state="pending")))
    assert patch == {"url": None, "finalizeURL": None, "authorizations": None}


class RecordingApi:
    """The part of KubeApi that write_status uses, recording each patch."""

    def __init__(self, error: int = 0) -> None:
        self.patches: list[tuple[str, str, str, dict[str, Any]]] = []
        self._error = error

    def patch_status(
        self,
        plural: str,
        namespace: str,
        name: str,
        patch: dict[str, Any],
        *,
        api_version: str = crd.API_VERSION,
    ) -> dict[str, Any]:
        if self._error:
            raise ApiException(status=self._error)
        self.patches.append((plural, namespace, name, patch))
        return {}


def test_write_status_patches_the_status_subresource_only_when_changed() -> None:
    api = RecordingApi()
    desired = crd.OrderStatus(state=OrderState.ERRORED, reason="CA refused the CSR")
    write = {"plural": crd.Order.PLURAL, "metadata": ORDER.metadata, "desired": desired}

    assert write_status(api, current=None, **write) is True
    assert write_status(api, current=desired, **write) is False

    assert api.patches == [
        ("orders", "team-a", "web-123", {"status": {"state": "errored", "reason": desired.reason}})
    ]


def test_an_object_that_is_gone_is_not_an_error_but_others_are() -> None:
    status = crd.OrderStatus(state=OrderState.VALID)
    write = {"plural": crd.Order.PLURAL, "metadata": ORDER.metadata, "current": None}
    assert write_status(RecordingApi(404), desired=status, **write) is False
    with pytest.raises(ApiException):
        write_status(RecordingApi(500), desired=status, **write)


# --- Order status --------------------------------------------------------------------------


def test_order_status_reads_like_the_reference_on_the_wire() -> None:
    failed = "2026-01-02T03:04:05.250000+00:00"
    wire = order_status(progress_of("errored", reason="badCSR", failure_time=failed)).to_api()
    assert wire == {
        "url": "https://ca.test/order/1",
        "finalizeURL": "https://ca.test/order/1/finalize",
        "authorizations": [
            {
                "url": "https://ca.test/authz/1",
                "identifier": "www.example.com",
                "wildcard": False,
                "initialState": "pending",
                "challenges": [
                    {"url": "https://ca.test/chall/1", "token": "t1", "type": "http-01"}
                ],
            }
        ],
        "state": "errored",
        "reason": "badCSR",
        "failureTime": "2026-01-02T03:04:05.250000Z",
    }


# --- Challenge resources -------------------------------------------------------------------

SOLVERS = {
    "ingress": SolverConfig(http01=Http01Ingress(ingress_class_name="nginx")),
    "gateway-with-labels": SolverConfig(
        selector=SolverSelector(dns_zones=["example.com"]),
        http01=Http01Ingress(
            gateway_parent_refs=[{"name": "gw", "namespace": "infra", "sectionName": "web"}],
            route_labels={"gateway": "public"},
        ),
    ),
    "rfc2136": SolverConfig(
        selector=SolverSelector(dns_names=["www.example.com"], match_labels={"team": "web"}),
        dns01=Rfc2136(
            nameserver="127.0.0.1:5353",
            tsig_key_name="acmeflow",
            tsig_secret=SecretRef(namespace="team-a", name="tsig", key="secret"),
            tsig_algorithm="HMACSHA512",
        ),
    ),
}


@pytest.mark.parametrize("solver", SOLVERS.values(), ids=SOLVERS.keys())
def test_a_challenge_shows_the_solver_the_issuer_named(solver: SolverConfig) -> None:
    """Challenge -> solver entry -> SolverConfig again: nothing the user wrote is lost."""
    sent = challenge_resource(challenge_progress(solver), order=ORDER).to_api()
    stored: crd.Challenge = read_back(crd.Challenge, sent)
    assert solver_config(stored.spec.solver, secret_namespace="team-a") == solver


def test_a_challenge_is_owned_by_its_order_and_labelled_with_it() -> None:
    solver = SOLVERS["ingress"]
    sent = challenge_resource(challenge_progress(solver), order=ORDER).to_api()
    assert sent["apiVersion"] == crd.API_VERSION and sent["kind"] == "Challenge"
    assert sent["metadata"] == {
        "name": "web-123-0",
        "namespace": "team-a",
        "labels": {"acmeflow.io/order": "web-123"},
        "ownerReferences": [
            {
                "apiVersion": crd.API_VERSION,
                "kind": "Order",
                "name": "web-123",
                "uid": "order-uid",
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
    }
    assert sent["spec"]["type"] == "HTTP-01"
    assert sent["spec"]["authorizationURL"] == "https://ca.test/authz/1"
    assert sent["spec"]["issuerRef"] == {"name": "le", "kind": "ClusterIssuer", "group": crd.GROUP}


def test_challenge_status_on_the_wire() -> None:
    status = challenge_status(challenge_progress(SOLVERS["ingress"], state="processing"))
    assert status.to_api() == {
        "processing": True,
        "presented": False,
        "reason": "Presenting",
        "state": "processing",
    }


# --- Certificate and Issuer status ---------------------------------------------------------


def certificate_update(**changes: Any) -> CertificateUpdate:
    status = CertificateStatus(
        ready="True",
        ready_reason="Ready",
        ready_message="Certificate is up to date and has not expired",
        not_before="2026-01-01T00:00:00Z",
        not_after="2026-04-01T00:00:00Z",
        renewal_time="2026-03-02T00:00:00Z",
        revision=1,
        observed_generation=1,
        **changes,
    )
    return CertificateUpdate(namespace="team-a", name="web", uid="cert-uid", status=status)


def test_certificate_status_shows_times_as_kubectl_does() -> None:
    wire = certificate_status(certificate_update(), crd.CertificateStatus()).to_api()
    assert wire["notAfter"] == "2026-04-01T00:00:00Z"
    assert wire["revision"] == 1
    # No Issuing condition once issued: cert-manager removes it too.
    assert [(c["type"], c["status"], c["reason"]) for c in wire["conditions"]] == [
        ("Ready", "True", "Ready"),
    ]


def test_an_unchanged_condition_keeps_its_transition_time_and_costs_no_write() -> None:
    first = certificate_status(certificate_update(), crd.CertificateStatus())
    stored = read_back(crd.CertificateStatus, first.to_api())
    stored.conditions[0].last_transition_time = datetime.datetime(2020, 1, 1, tzinfo=UTC)

    again = certificate_status(certificate_update(), stored)

    assert again.conditions is not None
    assert again.conditions[0].last_transition_time == datetime.datetime(2020, 1, 1, tzinfo=UTC)
    assert status_patch(stored, again) == {}


def test_a_condition_that_changes_status_gets_a_new_transition_time() -> None:
    stored = read_back(
        crd.CertificateStatus,
        certificate_status(certificate_update(), crd.CertificateStatus()).to_api(),
    )
    stored.conditions[0].last_transition_time = datetime.datetime(2020, 1, 1, tzinfo=UTC)
    renewing = certificate_status(certificate_update(issuing=True), stored)
    assert renewing.conditions is not None
    issuing = renewing.conditions[1]
    assert (issuing.type, issuing.status) == ("Issuing", "True")
    assert issuing.last_transition_time != datetime.datetime(2020, 1, 1, tzinfo=UTC)
    assert renewing.conditions[0].last_transition_time == datetime.datetime(2020, 1, 1, tzinfo=UTC)


def test_an_issuer_not_registered_yet_keeps_showing_its_last_account() -> None:
    registered = issuer_status(
        IssuerStatus(ready="True", account_uri="https://ca.test/acct/1", email="ops@example.com"),
        crd.IssuerStatus(),
    )
    stored = read_back(crd.IssuerStatus, registered.to_api())
    assert stored.acme == crd.AcmeIssuerStatus(
        uri="https://ca.test/acct/1", last_registered_email="ops@example.com"
    )

    failing = issuer_status(IssuerStatus(ready="False", reason="ErrRegisterACMEAccount"), stored)

    patch = status_patch(stored, failing)
    assert "acme" not in patch
    assert [(c["status"], c["reason"]) for c in patch["conditions"]] == [
        ("False", "ErrRegisterACMEAccount")
    ]


def test_a_resource_that_cannot_be_used_says_why_in_ready_and_nothing_else() -> None:
    after_a_failure = certificate_update(issuing_reason="Failed", issuing_message="it failed")
    stored = read_back(
        crd.CertificateStatus,
        certificate_status(after_a_failure, crd.CertificateStatus()).to_api(),
    )
    waiting = not_ready(
        stored, reason="IssuerNotReady", message='Waiting for Issuer "a/le"', generation=2
    )
    patch = status_patch(stored, waiting)
    assert list(patch) == ["conditions"]
    ready, issuing = patch["conditions"]
    assert (ready["type"], ready["status"], ready["reason"], ready["message"]) == (
        "Ready",
        "False",
        "IssuerNotReady",
        'Waiting for Issuer "a/le"',
    )
    assert ready["observedGeneration"] == 2
    assert issuing == stored.to_api()["conditions"][1], "the Issuing condition was touched"


# --- Events --------------------------------------------------------------------------------


def test_an_event_names_its_object_by_uid_as_kubectl_describe_needs() -> None:
    involved = InvolvedObject(kind="Challenge", namespace="team-a", name="web-123-0", uid="c-uid")
    event = OrderEvent(
        seq=3,
        at="2026-01-02T03:04:05.678000+00:00",
        kind=ObjectKind.CHALLENGE,
        object_name="web-123-0",
        type=EventType.NORMAL,
        reason=EventReason.CHALLENGE_PRESENTED,
        message="Presented challenge using HTTP-01 challenge mechanism",
    )
    body = client.ApiClient().sanitize_for_serialization(event_resource(involved, event))
    assert body["involvedObject"] == {
        "apiVersion": crd.API_VERSION,
        "kind": "Challenge",
        "name": "web-123-0",
        "namespace": "team-a",
        "uid": "c-uid",
    }
    assert body["metadata"] == {"name": "web-123-0.19b7ca98f2e0003", "namespace": "team-a"}
    assert (body["type"], body["reason"]) == ("Normal", "Presented")
    assert body["firstTimestamp"] == body["lastTimestamp"] == "2026-01-02T03:04:05+00:00"
    assert body["count"] == 1
    assert body["source"] == {"component": "acmeflow"}
