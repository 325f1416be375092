"""``acmeflow bridge``: Kubernetes resources to workflows, workflow progress to status."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from collections.abc import Sequence

from acmeflow.k8s_bridge.bridge import Bridge
from acmeflow.k8s_bridge.config import BridgeConfig
from acmeflow.k8s_bridge.informer import Informer
from acmeflow.k8s_bridge.kube_api import load_kube_api
from acmeflow.plumbing.health_server import (
    HealthServer,
    Readiness,
    ReadinessCheck,
    TemporalReadiness,
    constant,
)
from acmeflow.plumbing.settings import add_config_flags, load_settings
from acmeflow.plumbing.temporal_connection import connect, relayed_metrics_address

ROLE = "leader (no election: one replica)"
"""The bridge's role on /readyz: there is no leader election yet, so every replica leads."""


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


async def serve(config: BridgeConfig) -> None:
    client = await connect(config)
    bridge = Bridge(config, load_kube_api(config.kubeconfig), client)
    temporal = TemporalReadiness(config.temporal_address)
    temporal.client = client
    health = HealthServer(
        bind=config.metrics_bind,
        metrics_upstream=relayed_metrics_address(),
        checks=[
            temporal,
            informers_synced(list(bridge.informers.values())),
            constant("role", ROLE),
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
        await bridge.run(stop)


def run(args: argparse.Namespace) -> int:
    asyncio.run(serve(load_settings(BridgeConfig, args)))
    return 0
