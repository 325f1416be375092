"""``acmeflow worker``: run workflows and activities until SIGTERM, then stop gracefully."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal

from acmeflow.plumbing.health_server import HealthServer, TemporalReadiness
from acmeflow.plumbing.process_exit import exit_now
from acmeflow.plumbing.settings import add_config_flags
from acmeflow.plumbing.temporal_connection import connect, relayed_metrics_address
from acmeflow.worker.build import build_worker
from acmeflow.worker.config import WorkerConfig, load_config
from acmeflow.worker.search_attribute_setup import ensure_search_attributes

log = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "worker", help="run the Temporal worker (workflows and ACME activities)"
    )
    add_config_flags(parser, WorkerConfig)
    parser.add_argument(
        "--self-check-nameserver",
        dest="cfg_self_check_nameservers",
        action="append",
        metavar="NAME=HOST:PORT",
        help="where the DNS-01 self-check reaches nameserver NAME (repeatable)",
    )
    parser.set_defaults(run=run)


async def serve(args: argparse.Namespace) -> None:
    config = load_config(args)
    temporal = TemporalReadiness(config.temporal_address)
    health = HealthServer(
        bind=config.metrics_bind, metrics_upstream=relayed_metrics_address(), checks=[temporal]
    )
    async with contextlib.AsyncExitStack() as serving:
        if config.metrics_bind:
            await serving.enter_async_context(health)
        await poll(config, temporal, health)


async def poll(config: WorkerConfig, temporal: TemporalReadiness, health: HealthServer) -> None:
    client = await connect(config)
    temporal.client = client
    await ensure_search_attributes(client)
    worker = build_worker(client, config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info(
        "worker polling %s on %s (namespace %s)",
        config.task_queue,
        config.temporal_address,
        config.temporal_namespace,
    )
    async with worker:
        await stop.wait()
        health.shutting_down("draining running activities")
        log.info(
            "shutting down: letting running activities finish (up to %.0fs)",
            config.graceful_shutdown_s,
        )


def run(args: argparse.Namespace) -> int:
    """Exit 0 once drained (``exit_now``: the SDK's native threads must not outlive it)."""
    asyncio.run(serve(args))
    exit_now(0)
