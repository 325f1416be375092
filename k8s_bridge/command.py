"""``acmeflow bridge``: Kubernetes resources to workflows, workflow progress to status."""

from __future__ import annotations

import argparse
import asyncio
import signal

from acmeflow.k8s_bridge.bridge import Bridge
from acmeflow.k8s_bridge.config import BridgeConfig
from acmeflow.k8s_bridge.kube_api import load_kube_api
from acmeflow.plumbing.settings import add_config_flags, load_settings
from acmeflow.plumbing.temporal_connection import connect


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "bridge", help="run the Kubernetes bridge (Orders to workflows, progress to status)"
    )
    add_config_flags(parser, BridgeConfig)
    parser.set_defaults(run=run)


async def serve(config: BridgeConfig) -> None:
    client = await connect(config)
    bridge = Bridge(config, load_kube_api(config.kubeconfig), client)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await bridge.run(stop)


def run(args: argparse.Namespace) -> int:
    asyncio.run(serve(load_settings(BridgeConfig, args)))
    return 0
