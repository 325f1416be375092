"""Challenge resources as the Order workflow describes them: name, spec, status."""

from __future__ import annotations

from typing import Any

from acmeflow.contracts.issuer import SolverConfig
from acmeflow.contracts.progress import ChallengeProgress
from acmeflow.crds.models import API_VERSION, Challenge

ORDER_LABEL = "acmeflow.io/order"


def solver_resource(solver: SolverConfig) -> dict[str, Any]:
    """The issuer's solver entry, in the CRD's shape, copied into the Challenge."""
    body: dict[str, Any] = {}
    if solver.selector is not None:
        selector = {
            "dnsNames": solver.selector.dns_names,
            "dnsZones": solver.selector.dns_zones,
            "matchLabels": solver.selector.match_labels,
        }
        body["selector"] = {k: v for k, v in selector.items() if v}
    if solver.http01 is not None:
        if solver.http01.gateway_parent_refs:
            body["http01"] = {"gatewayHTTPRoute": {"parentRefs": solver.http01.gateway_parent_refs}}
        else:
            ingress = (
                {"ingressClassName": solver.http01.ingress_class_name}
                if solver.http01.ingress_class_name
                else {}
            )
            body["http01"] = {"ingress": ingress}
    if solver.dns01 is not None:
        rfc2136: dict[str, Any] = {"nameserver": solver.dns01.nameserver}
        if solver.dns01.tsig_key_name and solver.dns01.tsig_secret is not None:
            rfc2136["tsigKeyName"] = solver.dns01.tsig_key_name
            rfc2136["tsigSecretSecretRef"] = {
                "name": solver.dns01.tsig_secret.name,
                "key": solver.dns01.tsig_secret.key,
            }
        algorithm = solver.dns01.tsig_algorithm.upper().replace("-", "")
        if algorithm:
            rfc2136["tsigAlgorithm"] = algorithm
        body["dns01"] = {"rfc2136": rfc2136}
    return body


def challenge_body(
    challenge: ChallengeProgress, *, order_name: str, order_uid: str, issuer_ref: dict[str, Any]
) -> dict[str, Any]:
    spec = challenge.spec
    return {
        "apiVersion": API_VERSION,
        "kind": Challenge.KIND,
        "metadata": {
            "name": spec.name,
            "namespace": spec.namespace,
            "labels": {ORDER_LABEL: order_name},
            "ownerReferences": [
                {
                    "apiVersion": API_VERSION,
                    "kind": "Order",
                    "name": order_name,
                    "uid": order_uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "url": spec.url,
            "authorizationURL": spec.authorization_url,
            "dnsName": spec.dns_name,
            "wildcard": spec.wildcard,
            "type": spec.type,
            "token": spec.token,
            "key": spec.key,
            "solver": solver_resource(spec.solver),
            "issuerRef": issuer_ref,
        },
    }


def challenge_status(challenge: ChallengeProgress) -> dict[str, Any]:
    return {
        "processing": challenge.processing,
        "presented": challenge.presented,
        "reason": challenge.reason,
        "state": challenge.state,
    }
