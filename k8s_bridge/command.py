"""``acmeflow bridge``: Kubernetes resources to workflows, workflow progress to status."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from collections.abc import Sequence

from kubernetes.client import CoordinationV1Api

from acmeflow.k8s_bridge.bridge import Bridge
from acmeflow.k8s_bridge.config import BridgeConfig
from acmeflow.k8s_bridge.informer import Informer
from acmeflow.k8s_bridge.kube_api import KubeApi, load_kube_api
from acmeflow.k8s_bridge.leader_election import (
    Leadership,
    LeadershipLost,
    LeaseElection,
    LeaseTimings,
    SoleReplica,
    new_identity,
)
from acmeflow.plumbing.health_server import (
    HealthServer,
    Readiness,
    ReadinessCheck,
    TemporalReadiness,
)
from acmeflow.plumbing.process_exit import exit_now
from acmeflow.plumbing.settings import add_config_flags, load_settings
from acmeflow.plumbing.temporal_connection import connect, relayed_metrics_address


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "bridge", help="run the Kubernetes bridge (Orders to workflows, progress to status)"
    )
    add_config_flags(parser, BridgeConfig)
    parser.set_defaults(run=run)


def informers_synced(informers: Sequence[Informer]) -> ReadinessCheck:
    """Ready once every informer has listed its resources for the first time."""

    async def check() -> Readiness:
        waiting = [informer.name for informer in informers if not informer.wait_synced(0)]
        if waiting:
            return Readiness("informers", False, f"not synced: waiting for {', '.join(waiting)}")
        return Readiness("informers", True, f"synced ({len(informers)} informers)")

    return check


def leadership_of(config: BridgeConfig, api: KubeApi) -> Leadership:
    if not config.leader_elect:
        return SoleReplica()
    return LeaseElection(
        CoordinationV1Api(api.api_client),
        namespace=config.leader_election_namespace,
        name=config.leader_election_lease,
        identity=new_identity(),
        timings=LeaseTimings(
            lease_duration_s=config.leader_election_lease_duration_s,
            renew_deadline_s=config.leader_election_renew_deadline_s,
            retry_period_s=config.leader_election_retry_period_s,
        ),
    )


def role(leadership: Leadership) -> ReadinessCheck:
    """Leader or standby, as of now; a standby is ready (it takes over warm)."""

    async def check() -> Readiness:
        return Readiness("role", True, leadership.role())

    return check


async def serve(config: BridgeConfig) -> None:
    client = await connect(config)
    api = load_kube_api(config.kubeconfig)
    leadership = leadership_of(config, api)
    bridge = Bridge(config, api, client)
    temporal = TemporalReadiness(config.temporal_address)
    temporal.client = client
    health = HealthServer(
        bind=config.metrics_bind,
        metrics_upstream=relayed_metrics_address(),
        checks=[
            temporal,
            informers_synced(list(bridge.informers.values())),
            role(leadership),
        ],
    )
    stop = asyncio.Event()

    def stopping() -> None:
        health.shutting_down("stopping the bridge")
        stop.set()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping)
    async with contextlib.AsyncExitStack() as serving:
        if config.metrics_bind:
            await serving.enter_async_context(health)
        await bridge.run(stop, leadership)


def run(args: argparse.Namespace) -> int:
    """0 after SIGTERM; 1 when the Lease was lost (logged), so the replica restarts.

    Either way the process ends at once (``exit_now``), as client-go's does: its informer
    threads and the SDK's native ones may still be running, and one of them touching
    Python while the interpreter finalizes aborts it (SIGABRT) instead of exiting.
    """
    try:
        asyncio.run(serve(load_settings(BridgeConfig, args)))
    except LeadershipLost:
        exit_now(1)
    exit_now(0)
