"""Challenge resources for tests, built with the CRD models, and the matching ``ChallengeSpec``."""

from __future__ import annotations

from typing import Any

from acmeflow.contracts.challenge import ChallengeSpec
from acmeflow.contracts.issuer import Http01Ingress, SolverConfig
from acmeflow.contracts.states import ChallengeType
from acmeflow.crds import models as crd
from tests.k8s.kube_helpers import Kubectl

HTTP01_SOLVER = crd.AcmeSolver(http01=crd.Http01Solver(ingress=crd.IngressSolver()))
DNS01_SOLVER = crd.AcmeSolver(
    dns01=crd.Dns01Solver(rfc2136=crd.Rfc2136Provider(nameserver="127.0.0.1:53"))
)


def challenge_manifest(
    name: str,
    namespace: str,
    *,
    token: str,
    dns_name: str,
    challenge_type: ChallengeType = ChallengeType.HTTP01,
) -> dict[str, Any]:
    """A Challenge as ``kubectl create`` takes it; the key is ``<token>.thumbprint``."""
    challenge = crd.Challenge(
        metadata=crd.ObjectMeta(name=name, namespace=namespace),
        spec=crd.ChallengeSpec(
            url=f"https://ca.invalid/chall/{token}",
            authorization_url=f"https://ca.invalid/authz/{token}",
            dns_name=dns_name,
            type=challenge_type,
            token=token,
            key=f"{token}.thumbprint",
            solver=HTTP01_SOLVER if challenge_type is ChallengeType.HTTP01 else DNS01_SOLVER,
            issuer_ref=crd.IssuerRef(name="test-issuer"),
        ),
    )
    return challenge.to_api()


def create_challenge(
    kubectl: Kubectl,
    name: str,
    namespace: str,
    *,
    token: str,
    dns_name: str,
    challenge_type: ChallengeType = ChallengeType.HTTP01,
) -> str:
    """Create the Challenge; its uid."""
    kubectl.create(
        challenge_manifest(
            name, namespace, token=token, dns_name=dns_name, challenge_type=challenge_type
        )
    )
    uid: str = kubectl.get("challenge", name, namespace=namespace)["metadata"]["uid"]
    return uid


def http01_spec(
    name: str, namespace: str, *, token: str, dns_name: str, http01: Http01Ingress | None = None
) -> ChallengeSpec:
    """What the workflow hands the HTTP-01 activities for that Challenge."""
    return ChallengeSpec(
        name=name,
        namespace=namespace,
        order_name="order",
        dns_name=dns_name,
        wildcard=False,
        type=ChallengeType.HTTP01,
        token=token,
        key=f"{token}.thumbprint",
        url=f"https://ca.invalid/chall/{token}",
        authorization_url=f"https://ca.invalid/authz/{token}",
        solver=SolverConfig(http01=http01 or Http01Ingress()),
    )
