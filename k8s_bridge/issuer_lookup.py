"""The issuer a resource names, as the workflows need it, or why there is none yet."""

from __future__ import annotations

from pydantic import ValidationError

from acmeflow.contracts.issuer import IssuerConfig
from acmeflow.crds.models import ClusterIssuer, Issuer, IssuerRef
from acmeflow.k8s_bridge.conditions import READY
from acmeflow.k8s_bridge.informer import Informer, Obj
from acmeflow.k8s_bridge.issuer_translation import InvalidIssuerError, issuer_config


class IssuerLookup:
    def __init__(
        self, issuers: Informer, cluster_issuers: Informer, *, cluster_resource_namespace: str
    ) -> None:
        self._issuers = issuers
        self._cluster_issuers = cluster_issuers
        self._cluster_resource_namespace = cluster_resource_namespace

    def _named(
        self, namespace: str, ref: IssuerRef
    ) -> tuple[Obj | None, type[Issuer] | type[ClusterIssuer], str]:
        """The issuer object ``ref`` names (or None), its model, and how to show its name."""
        if ref.kind == ClusterIssuer.KIND:
            return self._cluster_issuers.get(ref.name), ClusterIssuer, ref.name
        return self._issuers.get(f"{namespace}/{ref.name}"), Issuer, f"{namespace}/{ref.name}"

    def not_ready_problem(self, namespace: str, ref: IssuerRef) -> str:
        """Why the issuer cannot issue now, if its Ready condition says False for its
        current spec; empty when Ready, or not yet decided (a new issuer still registering:
        an Order registers the account itself)."""
        obj, _, shown = self._named(namespace, ref)
        if obj is None:
            return ""
        generation = obj["metadata"].get("generation") or 0
        for condition in (obj.get("status") or {}).get("conditions") or []:
            if condition.get("type") != READY or condition.get("status") != "False":
                continue
            if (condition.get("observedGeneration") or 0) < generation:
                return ""  # about an older spec: the issuer's workflow is on the new one
            reason = condition.get("reason") or "NotReady"
            return (
                f'{ref.kind} "{shown}" is not Ready ({reason}: {condition.get("message", "")}); '
                "issuance waits until it is"
            )
        return ""

    def config_for(self, namespace: str, ref: IssuerRef) -> tuple[IssuerConfig | None, str]:
        """The issuer's configuration, or a sentence saying why there is none yet."""
        obj, model, shown = self._named(namespace, ref)
        if obj is None:
            return None, (
                f'Waiting for {ref.kind} "{shown}" to exist; the Order starts as soon as it does'
            )
        try:
            return issuer_config(
                model.model_validate(obj),
                cluster_resource_namespace=self._cluster_resource_namespace,
            ), ""
        except (InvalidIssuerError, ValidationError) as error:
            return None, f"{ref.kind} {shown} cannot be used: {error}"

    def users_of(self, informer: Informer, kind: str, namespace: str, name: str) -> list[str]:
        """Keys of the objects in ``informer`` whose issuerRef names this issuer."""
        keys = []
        for obj in informer.items():
            ref = obj.get("spec", {}).get("issuerRef", {})
            if ref.get("name") != name or ref.get("kind", Issuer.KIND) != kind:
                continue
            if kind == Issuer.KIND and obj["metadata"].get("namespace") != namespace:
                continue
            keys.append(f"{obj['metadata']['namespace']}/{obj['metadata']['name']}")
        return keys
