"""The whole embedded stack: start every server, wait until each answers, record where.

``stack.json`` in the state directory is the contract with everything else: the CLI's
``dev env``/``dev status``, ``acmeflow issue`` defaults, and the pytest fixtures read
the addresses from it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel

from acmeflow.devstack.bind import DnsEndpoints, bind_process
from acmeflow.devstack.cert_manager import cert_manager_process, install_cert_manager_crds
from acmeflow.devstack.components import component_processes, install_crds
from acmeflow.devstack.dns_webhook import DnsWebhookEndpoints, dns_webhook_process
from acmeflow.devstack.go_builds import (
    build_cert_manager,
    build_dns01_webhook,
    build_kube_binaries,
    build_pebble,
    build_temporal_server,
)
from acmeflow.devstack.kube import KubeEndpoints, etcd_process, kube_processes
from acmeflow.devstack.moto import moto_process, moto_url
from acmeflow.devstack.pebble import PebbleEndpoints, PebbleOptions, pebble_process, save_roots
from acmeflow.devstack.postgres import postgres_process
from acmeflow.devstack.powerdns import powerdns_process
from acmeflow.devstack.processes import ServerProcess, free_low_port, free_port, stop_pid_file
from acmeflow.devstack.solver import solver_process
from acmeflow.devstack.temporal_cluster import (
    HISTORY_SHARDS,
    ClusterPorts,
    TemporalCluster,
    temporal_cluster,
)
from acmeflow.devstack.temporal_server import temporal_process
from acmeflow.devstack.tls import create_ca

MANIFEST = "stack.json"
HEALTH_TIMEOUT_S = 120.0
TEMPORAL_MODES = ("dev", "cluster")


class Ports(BaseModel):
    """Every port the stack listens on; chosen free at ``up`` and kept in the manifest."""

    temporal: int
    temporal_ui: int
    temporal_http: int
    temporal_metrics: int
    pebble: int
    pebble_management: int
    pebble_tls: int
    http01: int
    dns: int
    etcd: int
    etcd_peer: int
    kube_apiserver: int
    kube_controller_manager: int
    cert_manager_healthz: int = 0
    """Chosen even when cert-manager does not run; 0 in manifests written before it existed."""
    powerdns: int = 0
    powerdns_api: int = 0
    moto: int = 0
    dns_webhook: int = 0
    """DNS-01 provider servers (issue 14); 0 in manifests written before they existed."""
    postgres: int = 0
    temporal_frontend_membership: int = 0
    temporal_history: int = 0
    temporal_history_membership: int = 0
    temporal_matching: int = 0
    temporal_matching_membership: int = 0
    temporal_worker: int = 0
    temporal_worker_membership: int = 0
    """The Temporal cluster's (``--temporal cluster``); its frontend takes ``temporal``."""

    def cluster(self) -> ClusterPorts:
        return ClusterPorts(
            frontend=self.temporal,
            frontend_membership=self.temporal_frontend_membership,
            frontend_http=self.temporal_http,
            history=self.temporal_history,
            history_membership=self.temporal_history_membership,
            matching=self.temporal_matching,
            matching_membership=self.temporal_matching_membership,
            worker=self.temporal_worker,
            worker_membership=self.temporal_worker_membership,
        )

    @classmethod
    def allocate(cls) -> Ports:
        chosen: set[int] = set()
        values: dict[str, int] = {}
        for name in cls.model_fields:
            # Temporal stores membership ports in a smallint column.
            pick = free_low_port if name.endswith("_membership") else free_port
            port = pick()
            while port in chosen:
                port = pick()
            chosen.add(port)
            values[name] = port
        return cls(**values)


class StackInfo(BaseModel):
    """Where each server of a running stack answers; serialised as ``stack.json``."""

    state_dir: Path
    ports: Ports
    temporal_address: str
    temporal_namespace: str = "default"
    temporal_ui_url: str
    acme_directory_url: str
    acme_ca_bundle: Path
    pebble_management_url: str
    pebble_roots: Path
    http01_port: int
    http01_store: Path
    dns_address: str
    dns_zone: str
    tsig_key_name: str
    tsig_algorithm: str
    tsig_secret_path: Path
    kubeconfig: Path
    kube_server: str
    kubectl: Path
    kube_ca: Path
    with_acmeflow: bool = False
    """Whether the stack runs acmeflow's own worker and bridge (``acmeflow dev up``)."""
    with_cert_manager: bool = False
    """Whether it runs cert-manager's controllers, and the bridge signs CertificateRequests."""
    temporal_mode: str = "dev"
    """``dev`` (the dev server, with its UI) or ``cluster`` (four services over PostgreSQL)."""
    dns_webhook: DnsWebhookEndpoints | None = None
    """acmeflow's cert-manager DNS webhook (writes into BIND9); None in older manifests."""
    powerdns_address: str = ""
    powerdns_api_url: str = ""
    powerdns_api_key_path: Path | None = None
    """PowerDNS (``example.net``, driven through its HTTP API); empty in older manifests."""
    moto_url: str = ""
    """moto, the stack's Route53 (hosted zone ``example.org``); empty in older manifests."""

    def save(self) -> None:
        (self.state_dir / MANIFEST).write_text(self.model_dump_json(indent=2))

    @classmethod
    def load(cls, state_dir: Path) -> StackInfo:
        return cls.model_validate_json((state_dir / MANIFEST).read_text())

    @property
    def dns(self) -> DnsEndpoints:
        return DnsEndpoints(
            self.dns_address,
            self.dns_zone,
            self.tsig_key_name,
            self.tsig_algorithm,
            self.tsig_secret_path,
        )

    def env(self) -> dict[str, str]:
        """Environment variables that point acmeflow and its tools at this stack."""
        return {
            "ACMEFLOW_STATE_DIR": str(self.state_dir),
            "KUBECONFIG": str(self.kubeconfig),
            "TEMPORAL_ADDRESS": self.temporal_address,
            "TEMPORAL_NAMESPACE": self.temporal_namespace,
            "ACMEFLOW_TEMPORAL_UI": self.temporal_ui_url,
            "ACMEFLOW_ACME_SERVER": self.acme_directory_url,
            "ACMEFLOW_ACME_CA_BUNDLE": str(self.acme_ca_bundle),
            "PATH": f"{self.kubectl.parent}:{os.environ.get('PATH', '')}",
        }


def remaining(started: float, timeout: float) -> float:
    return max(5.0, timeout - (time.monotonic() - started))


def default_state_dir() -> Path:
    configured = os.environ.get("ACMEFLOW_STATE_DIR")
    if configured:
        return Path(configured)
    base = Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local" / "state"))
    return base / "acmeflow" / "dev"


class DevStack:
    """The servers of one state directory, built the same way for ``up`` and ``status``."""

    def __init__(
        self,
        state_dir: Path,
        ports: Ports,
        *,
        with_acmeflow: bool = False,
        with_cert_manager: bool = False,
        temporal: str = "dev",
    ) -> None:
        if temporal not in TEMPORAL_MODES:
            raise ValueError(f"--temporal is one of {', '.join(TEMPORAL_MODES)}, not {temporal}")
        self.temporal_mode = temporal
        self.state_dir = state_dir
        self.ports = ports
        self.with_acmeflow = with_acmeflow
        self.with_cert_manager = with_cert_manager
        tls_ca = create_ca(state_dir / "tls", "ca", "acmeflow-dev-local-ca")
        self._tls_ca = tls_ca
        self.bind, dns = bind_process(state_dir, port=ports.dns, powerdns_port=ports.powerdns)
        self.powerdns, self._powerdns = powerdns_process(
            state_dir, port=ports.powerdns, api_port=ports.powerdns_api
        )
        self.pebble, pebble = pebble_process(
            state_dir,
            tls_ca,
            PebbleOptions(),
            port=ports.pebble,
            management_port=ports.pebble_management,
            http01_port=ports.http01,
            tls_port=ports.pebble_tls,
            dns_address=dns.address,
        )
        self.cluster: TemporalCluster | None = None
        if temporal == "cluster":
            postgres, postgres_endpoints = postgres_process(state_dir, port=ports.postgres)
            self.cluster = temporal_cluster(
                state_dir, ports.cluster(), postgres_endpoints, depends_on=postgres
            )
            self.temporal_servers = [postgres, *self.cluster.services]
        else:
            self.temporal_servers = [
                temporal_process(
                    state_dir,
                    port=ports.temporal,
                    ui_port=ports.temporal_ui,
                    metrics_port=ports.temporal_metrics,
                    http_port=ports.temporal_http,
                )
            ]
        self.etcd = etcd_process(state_dir, client_port=ports.etcd, peer_port=ports.etcd_peer)
        kube_servers, kube = kube_processes(
            state_dir,
            etcd_url=f"http://127.0.0.1:{ports.etcd}",
            api_port=ports.kube_apiserver,
            cm_port=ports.kube_controller_manager,
        )
        self.kube_servers = kube_servers
        self.moto = moto_process(state_dir, port=ports.moto)
        self.dns_webhook, dns_webhook = dns_webhook_process(
            state_dir, kube, port=ports.dns_webhook, depends_on=(kube_servers[0],)
        )
        self.info = self._info(dns, pebble, kube)
        self.info.dns_webhook = dns_webhook
        self.solver = solver_process(
            state_dir,
            port=ports.http01,
            store=self.info.http01_store,
            kubeconfig=self.info.kubeconfig,
        )
        self.cert_manager = (
            [cert_manager_process(state_dir, self.info, healthz_port=ports.cert_manager_healthz)]
            if with_cert_manager
            else []
        )
        self.components = (
            component_processes(
                state_dir,
                self.info,
                ports.dns,
                external_issuer=with_cert_manager,
                powerdns_port=ports.powerdns,
            )
            if with_acmeflow
            else []
        )

    def _info(self, dns: DnsEndpoints, pebble: PebbleEndpoints, kube: KubeEndpoints) -> StackInfo:
        return StackInfo(
            state_dir=self.state_dir,
            ports=self.ports,
            temporal_address=f"127.0.0.1:{self.ports.temporal}",
            temporal_ui_url="" if self.cluster else f"http://127.0.0.1:{self.ports.temporal_ui}",
            temporal_mode=self.temporal_mode,
            acme_directory_url=pebble.directory_url,
            acme_ca_bundle=self._tls_ca.cert_path,
            pebble_management_url=pebble.management_url,
            pebble_roots=pebble.roots_path,
            http01_port=self.ports.http01,
            http01_store=self.state_dir / "http01",
            dns_address=dns.address,
            dns_zone=dns.zone,
            tsig_key_name=dns.tsig_key_name,
            tsig_algorithm=dns.tsig_algorithm,
            tsig_secret_path=dns.tsig_secret_path,
            kubeconfig=kube.kubeconfig,
            kube_server=kube.server,
            kubectl=kube.kubectl,
            kube_ca=kube.ca_path,
            with_acmeflow=self.with_acmeflow,
            with_cert_manager=self.with_cert_manager,
            powerdns_address=self._powerdns.dns_address,
            powerdns_api_url=self._powerdns.api_url,
            powerdns_api_key_path=self._powerdns.api_key_path,
            moto_url=moto_url(self.ports.moto),
        )

    @property
    def servers(self) -> list[ServerProcess]:
        """In dependency order: a server's health may depend on the ones before it."""
        return [
            self.powerdns,
            self.bind,
            self.pebble,
            *self.temporal_servers,
            self.etcd,
            *self.kube_servers,
            self.solver,
            self.dns_webhook,
            self.moto,
        ]

    @property
    def all_processes(self) -> list[ServerProcess]:
        """The servers, cert-manager, then acmeflow's worker and bridge when the stack runs them."""
        return [*self.servers, *self.cert_manager, *self.components]

    def addresses(self) -> Iterator[tuple[ServerProcess, str]]:
        ports = self.ports
        shown = {
            "bind9": f"127.0.0.1:{ports.dns} (udp/tcp)",
            "powerdns": f"127.0.0.1:{ports.powerdns} (udp/tcp) api {self.info.powerdns_api_url}",
            "pebble": self.info.acme_directory_url,
            "temporal": f"{self.info.temporal_address} ui {self.info.temporal_ui_url}",
            "postgres": f"127.0.0.1:{ports.postgres}",
            "temporal-frontend": f"{self.info.temporal_address} (no UI)",
            "temporal-history": f"127.0.0.1:{ports.temporal_history} ({HISTORY_SHARDS} shards)",
            "temporal-matching": f"127.0.0.1:{ports.temporal_matching}",
            "temporal-worker": f"127.0.0.1:{ports.temporal_worker}",
            "etcd": f"http://127.0.0.1:{ports.etcd}",
            "kube-apiserver": self.info.kube_server,
            "kube-controller-manager": f"https://127.0.0.1:{ports.kube_controller_manager}",
            "http01-solver": f"http://127.0.0.1:{ports.http01}",
            "dns01-webhook": f"https://127.0.0.1:{ports.dns_webhook}",
            "moto": f"{self.info.moto_url} (Route53)",
            "cert-manager": f"healthz http://127.0.0.1:{ports.cert_manager_healthz}/healthz",
            "acmeflow-worker": f"task queue acmeflow on {self.info.temporal_address}",
            "acmeflow-bridge": f"watching {self.info.kube_server}",
        }
        for server in self.all_processes:
            yield server, shown[server.name]

    @classmethod
    def create(
        cls,
        state_dir: Path,
        *,
        with_acmeflow: bool = False,
        with_cert_manager: bool = False,
        temporal: str = "dev",
    ) -> DevStack:
        state_dir.mkdir(parents=True, exist_ok=True)
        return cls(
            state_dir.resolve(),
            Ports.allocate(),
            with_acmeflow=with_acmeflow,
            with_cert_manager=with_cert_manager,
            temporal=temporal,
        )

    @classmethod
    def existing(cls, state_dir: Path) -> DevStack:
        info = StackInfo.load(state_dir)
        return cls(
            state_dir,
            info.ports,
            with_acmeflow=info.with_acmeflow,
            with_cert_manager=info.with_cert_manager,
            temporal=info.temporal_mode,
        )

    def up(self, timeout: float = HEALTH_TIMEOUT_S) -> StackInfo:
        """Start every server, return once all answer; stop what started if one fails."""
        build_log = self.state_dir / "logs" / "go-build.log"
        build_pebble(build_log)
        build_kube_binaries(build_log)
        build_dns01_webhook(build_log)
        if self.with_cert_manager:
            build_cert_manager(build_log)
        if self.cluster:
            build_temporal_server(build_log)
            self.cluster.prepare()
        self.info.http01_store.mkdir(parents=True, exist_ok=True)
        self.info.save()
        started = time.monotonic()
        try:
            for server in self.servers:
                for dependency in server.depends_on:
                    dependency.wait_healthy(remaining(started, timeout))
                if self.cluster and server is self.cluster.services[0]:
                    self.cluster.set_up_schemas()
                if server.popen is None:
                    server.start()
            for server in self.servers:
                server.wait_healthy(remaining(started, timeout))
            if self.cluster:
                self.cluster.register_namespace(remaining(started, timeout))
            save_roots(
                PebbleEndpoints(
                    self.info.acme_directory_url,
                    self.info.pebble_management_url,
                    self.info.pebble_roots,
                ),
                self.info.acme_ca_bundle,
            )
            install_crds(self.info)
            if self.with_cert_manager:
                install_cert_manager_crds(self.info, log=build_log)
            for process in [*self.cert_manager, *self.components]:
                process.start()
            for process in [*self.cert_manager, *self.components]:
                process.wait_healthy(remaining(started, timeout))
        except BaseException:
            self.down()
            raise
        return self.info

    def down(self) -> list[str]:
        """Stop every process this state directory recorded, by pid."""
        stopped = []
        pid_dir = self.state_dir / "pids"
        # PostgreSQL last: its SIGTERM shutdown waits for the cluster's connections to close.
        pid_paths = sorted(pid_dir.glob("*.pid"), key=lambda p: (p.stem == "postgres", p.stem))
        for pid_path in pid_paths if pid_dir.exists() else []:
            if stop_pid_file(pid_path):
                stopped.append(pid_path.stem)
        return stopped


def start_extra_pebble(
    info: StackInfo,
    options: PebbleOptions,
    *,
    http01_port: int | None = None,
    port: int | None = None,
) -> tuple[ServerProcess, PebbleEndpoints]:
    """Another Pebble beside the stack's (EAB required, nonce rejection, a validation gate).

    It shares the stack's BIND9 and, unless told otherwise, validates HTTP-01 against the
    stack's responder. Stop it with ``stop_pid_file(process.pid_path)``.
    """
    tls_ca = create_ca(info.state_dir / "tls", "ca", "acmeflow-dev-local-ca")
    process, endpoints = pebble_process(
        info.state_dir,
        tls_ca,
        options,
        port=port or free_port(),
        management_port=free_port(),
        http01_port=http01_port or info.http01_port,
        tls_port=free_port(),
        dns_address=info.dns_address,
    )
    process.start()
    try:
        process.wait_healthy(30.0)
        save_roots(endpoints, info.acme_ca_bundle)
    except BaseException:
        stop_pid_file(process.pid_path)
        raise
    return process, endpoints
