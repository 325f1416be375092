"""A Temporal cluster in place of the dev server: frontend, history, matching and worker
as four processes of ``temporal-server`` over PostgreSQL, all on 127.0.0.1.

Built from ``go.temporal.io/server`` (``go_builds.build_temporal_server``). Persistence
and visibility both live in PostgreSQL: SQL visibility takes custom search attributes,
which acmeflow's workflows upsert. The schema is set up with ``temporal-sql-tool`` from
the versioned SQL the build keeps beside the binaries.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import BaseModel

from acmeflow.devstack.go_builds import temporal_server_dir
from acmeflow.devstack.postgres import PASSWORD, USER, PostgresEndpoints, init_cluster
from acmeflow.devstack.processes import ServerProcess, port_open
from acmeflow.devstack.temporal_server import temporal_cli
from acmeflow.workflows.search_attributes import SEARCH_ATTRIBUTE_TYPES

SERVICES = ("history", "matching", "frontend", "worker")
"""Start order: the frontend waits for history and matching to join the ring."""
HISTORY_SHARDS = 4
DATABASES = {"temporal": "temporal", "temporal_visibility": "visibility"}
NAMESPACE = "default"


class ClusterPorts(BaseModel):
    """gRPC and membership ports per service, plus the frontend's HTTP port."""

    frontend: int
    frontend_membership: int
    frontend_http: int
    history: int
    history_membership: int
    matching: int
    matching_membership: int
    worker: int
    worker_membership: int


def _datastore(database: str, postgres: PostgresEndpoints, connections: int) -> dict[str, object]:
    return {
        "sql": {
            "pluginName": "postgres12",
            "databaseName": database,
            "connectAddr": postgres.address,
            "connectProtocol": "tcp",
            "user": USER,
            "password": PASSWORD,
            "maxConns": connections,
            "maxIdleConns": connections,
            "maxConnLifetime": "1h",
        }
    }


DYNAMIC_CONFIG = {
    # A search attribute added at start-up is usable by the next workflow, as on the
    # dev server, instead of after the cache's own refresh.
    "system.forceSearchAttributesCacheRefreshOnRead": [{"value": True}],
}


def server_config(
    ports: ClusterPorts, postgres: PostgresEndpoints, dynamic_config: Path
) -> dict[str, object]:
    def rpc(service: str) -> dict[str, object]:
        values: dict[str, object] = {
            "grpcPort": getattr(ports, service),
            "membershipPort": getattr(ports, f"{service}_membership"),
            "bindOnIP": "127.0.0.1",
        }
        if service == "frontend":
            values["httpPort"] = ports.frontend_http
        return {"rpc": values}

    frontend = f"127.0.0.1:{ports.frontend}"
    return {
        "log": {"stdout": True, "level": "warn"},
        "persistence": {
            "defaultStore": "default",
            "visibilityStore": "visibility",
            "numHistoryShards": HISTORY_SHARDS,
            "datastores": {
                "default": _datastore("temporal", postgres, 20),
                "visibility": _datastore("temporal_visibility", postgres, 10),
            },
        },
        "global": {
            "membership": {"maxJoinDuration": "30s", "broadcastAddress": "127.0.0.1"},
        },
        "services": {service: rpc(service) for service in SERVICES},
        "clusterMetadata": {
            "enableGlobalNamespace": False,
            "failoverVersionIncrement": 10,
            "masterClusterName": "active",
            "currentClusterName": "active",
            "clusterInformation": {
                "active": {
                    "enabled": True,
                    "initialFailoverVersion": 1,
                    "rpcName": "frontend",
                    "rpcAddress": frontend,
                    "httpAddress": f"127.0.0.1:{ports.frontend_http}",
                }
            },
        },
        "dcRedirectionPolicy": {"policy": "noop"},
        "archival": {"history": {"state": "disabled"}, "visibility": {"state": "disabled"}},
        "namespaceDefaults": {
            "archival": {"history": {"state": "disabled"}, "visibility": {"state": "disabled"}}
        },
        "dynamicConfigClient": {"filepath": str(dynamic_config), "pollInterval": "10s"},
    }


@dataclass(frozen=True)
class TemporalCluster:
    """The cluster's processes and what it takes to make them usable."""

    services: list[ServerProcess]
    ports: ClusterPorts
    postgres: PostgresEndpoints
    config_path: Path

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.ports.frontend}"

    def prepare(self) -> None:
        """initdb, the databases and their schemas; each step skips what exists."""
        init_cluster(self.postgres)

    def set_up_schemas(self) -> None:
        tool = str(temporal_server_dir() / "temporal-sql-tool")
        for database, schema in DATABASES.items():
            base = [
                tool,
                "--plugin",
                "postgres12",
                "--ep",
                "127.0.0.1",
                "-p",
                str(self.postgres.port),
                "-u",
                USER,
                "--pw",
                PASSWORD,
                "--db",
                database,
            ]
            versioned = temporal_server_dir() / "schema" / schema / "versioned"
            _run([*base, "create-database"], ok_if="already exists")
            _run([*base, "setup-schema", "-v", "0.0"], ok_if="already exists")
            _run([*base, "update-schema", "-d", str(versioned)])

    def register_namespace(self, timeout: float) -> None:
        """The ``default`` namespace and acmeflow's search attributes, as the dev server has.

        The frontend answers before the ring has formed, and a new namespace reaches the
        services' caches some seconds later; both are waited out, not failed.
        """
        cli = temporal_cli()
        common = ["--address", self.address, "--namespace", NAMESPACE]
        deadline = time.monotonic() + timeout
        steps = [
            ([cli, "operator", "namespace", "create", *common, "--retention", "72h"], "already"),
            *(
                (
                    [
                        cli,
                        "operator",
                        "search-attribute",
                        "create",
                        *common,
                        "--name",
                        name,
                        "--type",
                        kind,
                    ],
                    "already",
                )
                for name, kind in SEARCH_ATTRIBUTE_TYPES.items()
            ),
            ([cli, "workflow", "count", *common], None),
        ]
        for argv, ok_if in steps:
            while True:
                try:
                    _run(argv, ok_if=ok_if)
                    break
                except RuntimeError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(1.0)


def _run(argv: list[str], ok_if: str | None = None) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode == 0:
        return
    output = done.stdout + done.stderr
    if ok_if is not None and ok_if in output:
        return
    raise RuntimeError(f"{' '.join(argv[:3])} failed ({done.returncode}): {output[-2000:]}")


def temporal_cluster(
    state_dir: Path, ports: ClusterPorts, postgres: PostgresEndpoints, depends_on: ServerProcess
) -> TemporalCluster:
    config_dir = state_dir / "temporal-cluster"
    config_dir.mkdir(parents=True, exist_ok=True)
    config_path = config_dir / "config.yaml"
    dynamic_config = config_dir / "dynamicconfig.yaml"
    dynamic_config.write_text(yaml.safe_dump(DYNAMIC_CONFIG))
    config_path.write_text(
        yaml.safe_dump(server_config(ports, postgres, dynamic_config), sort_keys=False)
    )
    binary = str(temporal_server_dir() / "temporal-server")
    services: list[ServerProcess] = []
    for service in SERVICES:
        # One at a time: the first writes the cluster metadata, which a second racing it
        # fails on (duplicate key), and the frontend needs the others in the ring.
        previous = services[-1] if services else depends_on
        services.append(
            ServerProcess(
                name=f"temporal-{service}",
                argv=[
                    binary,
                    "--config-file",
                    str(config_path),
                    "--allow-no-auth",
                    "start",
                    "--service",
                    service,
                ],
                state_dir=state_dir,
                healthy=_listening(getattr(ports, service)),
                depends_on=(previous,),
            )
        )
    return TemporalCluster(services, ports, postgres, config_path)


def _listening(port: int) -> Callable[[], bool]:
    return lambda: port_open(port)
