"""The pure parts of revisionHistoryLimit, done Challenges and the Issuing condition."""

from __future__ import annotations

import datetime
from typing import Any

from acmeflow.activities.certificate_steps import REVISION_ANNOTATION
from acmeflow.activities.order_history import orders_to_prune
from acmeflow.contracts.challenge import ChallengeSpec
from acmeflow.contracts.issuer import Http01Ingress, SolverConfig
from acmeflow.contracts.progress import (
    CertificateStatus,
    CertificateUpdate,
    ChallengeProgress,
    ConditionReason,
)
from acmeflow.contracts.states import ChallengeState, ChallengeType, OrderState
from acmeflow.crds import models as crd
from acmeflow.k8s_bridge.resource_mirrors import certificate_status

CERTIFICATE_UID = "cert-uid"
T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


def _order(
    name: str,
    revision: int | None,
    *,
    state: OrderState | None = OrderState.VALID,
    owner: str = CERTIFICATE_UID,
    minute: int = 0,
) -> crd.Order:
    annotations = {REVISION_ANNOTATION: str(revision)} if revision is not None else None
    return crd.Order(
        metadata=crd.ObjectMeta(
            name=name,
            namespace="team-a",
            uid=f"{name}-uid",
            annotations=annotations,
            creation_timestamp=T0 + datetime.timedelta(minutes=minute),
            owner_references=[
                crd.OwnerReference(
                    api_version=crd.API_VERSION, kind="Certificate", name="web", uid=owner
                )
            ],
        ),
        spec=crd.OrderSpec(request="csr", issuer_ref=crd.IssuerRef(name="le"), dns_names=["a"]),
        status=crd.OrderStatus(state=state) if state is not None else None,
    )


def _pruned(orders: list[crd.Order], keep: int, current: str = "") -> list[str]:
    doomed = orders_to_prune(orders, certificate_uid=CERTIFICATE_UID, keep=keep, current=current)
    return sorted(o.metadata.name for o in doomed)


def test_the_newest_revisions_stay_and_the_older_go() -> None:
    orders = [_order(f"web-{r}", r, minute=r) for r in (3, 1, 4, 2)]
    assert _pruned(orders, keep=2, current="web-4") == ["web-1", "web-2"]
    assert _pruned(orders, keep=4, current="web-4") == []


def test_revision_beats_age_and_age_orders_the_attempts_of_one_revision() -> None:
    orders = [
        _order("web-new-but-old-revision", 1, minute=50),
        _order("web-2-first-try", 2, state=OrderState.INVALID, minute=10),
        _order("web-2-second-try", 2, minute=20),
        _order("web-from-before-annotations", None, minute=60),
    ]
    assert _pruned(orders, keep=1, current="web-2-second-try") == [
        "web-2-first-try",
        "web-from-before-annotations",
        "web-new-but-old-revision",
    ]


def test_the_current_order_an_order_in_progress_and_anothers_order_are_never_pruned() -> None:
    orders = [
        _order("web-1", 1),
        _order("web-2-running", 2, state=OrderState.PROCESSING),
        _order("web-2-unseen", 2, state=None),
        _order("other-1", 1, owner="another-certificates-uid"),
        _order("web-3", 3),
    ]
    # The current Order is kept even where a namesake revision would sort it out.
    assert _pruned(orders, keep=1, current="web-1") == []
    assert _pruned(orders, keep=1, current="web-3") == ["web-1"]


def test_a_limit_below_one_keeps_the_newest_all_the_same() -> None:
    assert _pruned([_order("web-1", 1), _order("web-2", 2)], keep=0, current="") == ["web-1"]


def _challenge(state: ChallengeState, *, cleaned_up: bool) -> ChallengeProgress:
    solver = SolverConfig(http01=Http01Ingress())
    spec = ChallengeSpec(
        name="web-1-0",
        namespace="team-a",
        order_name="web-1",
        dns_name="a.example.com",
        wildcard=False,
        type=ChallengeType.HTTP01,
        token="t",
        key="t.k",
        url="https://ca.test/chall/1",
        authorization_url="https://ca.test/authz/1",
        solver=solver,
    )
    return ChallengeProgress(spec=spec, state=state, cleaned_up=cleaned_up)


def test_only_a_valid_challenge_that_is_cleaned_up_is_done() -> None:
    assert _challenge(ChallengeState.VALID, cleaned_up=True).done
    assert not _challenge(ChallengeState.VALID, cleaned_up=False).done, "record still there"
    assert not _challenge(ChallengeState.INVALID, cleaned_up=True).done, "kept to say why"
    assert not _challenge(ChallengeState.PENDING, cleaned_up=True).done


def _conditions(current: crd.CertificateStatus, **status: Any) -> list[tuple[str, str, str]]:
    update = CertificateUpdate("team-a", "web", CERTIFICATE_UID, CertificateStatus(**status))
    shown = certificate_status(update, current).conditions or []
    return [(c.type, c.status, c.reason) for c in shown]


def test_issuing_shows_while_issuing_and_after_a_failure_and_goes_once_issued() -> None:
    issuing = _conditions(
        crd.CertificateStatus(),
        ready="False",
        ready_reason=ConditionReason.SECRET_MISSING,
        issuing=True,
        issuing_reason=ConditionReason.SECRET_MISSING,
    )
    assert issuing == [("Ready", "False", "DoesNotExist"), ("Issuing", "True", "DoesNotExist")]
    failed = _conditions(
        crd.CertificateStatus(),
        ready="False",
        ready_reason=ConditionReason.FAILED,
        issuing_reason=ConditionReason.FAILED,
    )
    assert failed == [("Ready", "False", "Failed"), ("Issuing", "False", "Failed")]
    stored = certificate_status(
        CertificateUpdate(
            "team-a", "web", CERTIFICATE_UID, CertificateStatus(issuing=True, issuing_reason="x")
        ),
        crd.CertificateStatus(),
    )
    issued = _conditions(stored, ready="True", ready_reason=ConditionReason.READY)
    assert issued == [("Ready", "True", "Ready")]
