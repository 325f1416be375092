"""The issuer a resource names, as the workflows need it, or why there is none yet."""

from __future__ import annotations

from pydantic import ValidationError

from acmeflow.contracts.issuer import IssuerConfig
from acmeflow.crds.models import ClusterIssuer, Issuer, IssuerRef
from acmeflow.k8s_bridge.informer import Informer
from acmeflow.k8s_bridge.issuer_translation import InvalidIssuerError, issuer_config


class IssuerLookup:
    def __init__(
        self, issuers: Informer, cluster_issuers: Informer, *, cluster_resource_namespace: str
    ) -> None:
        self._issuers = issuers
        self._cluster_issuers = cluster_issuers
        self._cluster_resource_namespace = cluster_resource_namespace

    def config_for(self, namespace: str, ref: IssuerRef) -> tuple[IssuerConfig | None, str]:
        """The issuer's configuration, or a sentence saying why there is none yet."""
        model: type[Issuer] | type[ClusterIssuer]
        if ref.kind == ClusterIssuer.KIND:
            obj, model, shown = self._cluster_issuers.get(ref.name), ClusterIssuer, ref.name
        else:
            obj, model = self._issuers.get(f"{namespace}/{ref.name}"), Issuer
            shown = f"{namespace}/{ref.name}"
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
