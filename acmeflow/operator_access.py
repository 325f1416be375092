"""How the operator's commands (``acmeflow status``, ``acmeflow renew``) reach the cluster
and Temporal: kubectl's kubeconfig and namespace, the worker's Temporal settings.

Settings come from the same sources as the worker's and the bridge's (``--config``,
``ACMEFLOW_<FIELD>``, ``TEMPORAL_ADDRESS``/``TEMPORAL_NAMESPACE``, flags), so the lines of
``acmeflow dev env`` point these commands at the dev stack as they point kubectl there.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from temporalio.client import Client
from urllib3.exceptions import HTTPError

from acmeflow.crds import models as crd
from acmeflow.plumbing.kubernetes_client import kubernetes_api_client
from acmeflow.plumbing.settings import TemporalSettings, add_config_flags, load_settings
from acmeflow.plumbing.temporal_connection import connect

Resource = TypeVar("Resource", bound=crd.KubeResource)
T = TypeVar("T")
CONNECT_TIMEOUT_S = 10.0
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class OperatorSettings(TemporalSettings):
    """What ``acmeflow status`` and ``acmeflow renew`` read."""

    kubeconfig: Path | None = None
    """Kubeconfig file; $KUBECONFIG or ~/.kube/config when unset, as for kubectl."""
    temporal_ui: str = ""
    """Base URL of the Temporal UI, for links to workflows (``acmeflow dev env`` sets it)."""


class OperatorError(Exception):
    """Something the operator asked about does not exist or cannot be reached; its text
    is the whole message the command prints."""


def add_operator_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-n",
        "--namespace",
        help="namespace of the Certificate (default: the kubeconfig context's, else default)",
    )
    add_config_flags(parser, OperatorSettings)


def load_operator_settings(args: argparse.Namespace) -> OperatorSettings:
    return load_settings(OperatorSettings, args)


def default_namespace(kubeconfig: Path | None) -> str:
    """The current kubeconfig context's namespace, as kubectl picks it; else ``default``."""
    try:
        _, active = config.list_kube_config_contexts(
            config_file=str(kubeconfig) if kubeconfig else None
        )
    except (config.ConfigException, OSError):
        return "default"
    namespace: str = (active or {}).get("context", {}).get("namespace") or "default"
    return namespace


def refused(error: OperatorError) -> int:
    """Say what went wrong, kubectl's way; the exit status of a command that could not."""
    print(f"error: {error}", file=sys.stderr)
    return 1


def read_cluster(settings: OperatorSettings, read: Callable[[ClusterReader], T]) -> T:
    """``read`` with a reader of the cluster; an API server out of reach is said so."""
    try:
        return read(ClusterReader(settings.kubeconfig))
    except HTTPError as error:
        raise OperatorError(f"cannot reach the Kubernetes API: {error}") from error


async def connect_temporal(settings: OperatorSettings) -> Client:
    try:
        return await asyncio.wait_for(connect(settings), CONNECT_TIMEOUT_S)
    except (RuntimeError, TimeoutError, OSError) as error:
        raise OperatorError(
            f"cannot reach Temporal at {settings.temporal_address}: {error or 'timed out'}"
        ) from error


def workflow_link(settings: OperatorSettings, workflow_id: str) -> str:
    """The workflow's page in the Temporal UI; empty without a UI base URL."""
    if not settings.temporal_ui:
        return ""
    base = settings.temporal_ui.rstrip("/")
    namespace = quote(settings.temporal_namespace, safe="")
    return f"{base}/namespaces/{namespace}/workflows/{quote(workflow_id, safe='')}"


class ClusterReader:
    """Reads acmeflow's resources (as their typed models), Secrets and Events."""

    def __init__(self, kubeconfig: Path | None) -> None:
        try:
            api_client = kubernetes_api_client(kubeconfig, pool_size=4)
        except (config.ConfigException, OSError) as error:
            raise OperatorError(f"cannot load a kubeconfig: {error}") from error
        self.core = client.CoreV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)

    def require_namespace(self, namespace: str) -> None:
        try:
            self.core.read_namespace(namespace)
        except ApiException as error:
            if error.status == 404:
                raise OperatorError(f'namespace "{namespace}" not found') from error
            if error.status != 403:  # a user allowed in one namespace only may not read it
                raise _unreachable(error) from error

    def get(self, kind: type[Resource], namespace: str, name: str) -> Resource:
        """The object, or OperatorError saying it does not exist (kubectl's wording)."""
        try:
            body = self.custom.get_namespaced_custom_object(
                crd.GROUP, crd.VERSION, namespace, kind.PLURAL, name
            )
        except ApiException as error:
            if error.status == 404:
                self.require_namespace(namespace)
                raise OperatorError(
                    f'{kind.KIND} "{name}" not found in namespace "{namespace}"'
                ) from error
            raise _unreachable(error) from error
        return kind.model_validate(body)

    def get_cluster(self, kind: type[Resource], name: str) -> Resource:
        """A cluster-scoped object (a ClusterIssuer), or OperatorError if it is missing."""
        try:
            body = self.custom.get_cluster_custom_object(crd.GROUP, crd.VERSION, kind.PLURAL, name)
        except ApiException as error:
            if error.status == 404:
                raise OperatorError(f'{kind.KIND} "{name}" not found') from error
            raise _unreachable(error) from error
        return kind.model_validate(body)

    def objects(
        self, kind: type[Resource], namespace: str | None, *, label_selector: str = ""
    ) -> list[Resource]:
        """Objects of ``kind`` in ``namespace`` (every namespace when None)."""
        try:
            if namespace is None:
                body = self.custom.list_cluster_custom_object(
                    crd.GROUP, crd.VERSION, kind.PLURAL, label_selector=label_selector
                )
            else:
                body = self.custom.list_namespaced_custom_object(
                    crd.GROUP, crd.VERSION, namespace, kind.PLURAL, label_selector=label_selector
                )
        except ApiException as error:
            raise _unreachable(error) from error
        return [kind.model_validate(item) for item in body.get("items", [])]

    def secret(self, namespace: str, name: str) -> client.V1Secret | None:
        try:
            secret: client.V1Secret = self.core.read_namespaced_secret(name, namespace)
        except ApiException as error:
            if error.status == 404:
                return None
            raise _unreachable(error) from error
        return secret

    def events_of(self, namespace: str, uid: str) -> list[client.CoreV1Event]:
        """The object's Events, oldest first, as ``kubectl describe`` lists them."""
        try:
            listed = self.core.list_namespaced_event(
                namespace, field_selector=f"involvedObject.uid={uid}"
            )
        except ApiException as error:
            raise _unreachable(error) from error
        events: list[client.CoreV1Event] = listed.items
        return sorted(events, key=_event_time)


def _event_time(event: client.CoreV1Event) -> datetime:
    when: datetime | None = (
        event.last_timestamp or event.event_time or event.metadata.creation_timestamp
    )
    return when or _EPOCH


def _unreachable(error: ApiException) -> OperatorError:
    return OperatorError(f"the Kubernetes API answered {error.status}: {error.reason}")
