"""Connect to Temporal as configured: plain (dev server), mTLS, or Temporal Cloud API key.

With ``metrics_bind`` set, the client (and every worker built on it) runs on a Temporal
``Runtime`` that serves Prometheus ``/metrics``: the SDK's own metrics and acmeflow's, one
endpoint per process. The runtime binds an internal ``127.0.0.1`` port
(:func:`relayed_metrics_address`); the process's health server
(:mod:`acmeflow.plumbing.health_server`) relays ``/metrics`` from it on ``metrics_bind``
next to ``/healthz`` and ``/readyz``, which the SDK's endpoint cannot serve.
"""

from __future__ import annotations

import functools
import socket

from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.service import TLSConfig

from acmeflow.contracts.metrics import HISTOGRAM_BUCKETS
from acmeflow.plumbing.settings import TemporalSettings


@functools.cache
def metrics_runtime(bind_address: str) -> Runtime:
    """The process's one Runtime with a Prometheus endpoint at ``bind_address``.

    Counters end in ``_total`` and durations are seconds, as Prometheus expects.
    """
    return Runtime(
        telemetry=TelemetryConfig(
            metrics=PrometheusConfig(
                bind_address=bind_address,
                counters_total_suffix=True,
                durations_as_seconds=True,
                histogram_bucket_overrides=HISTOGRAM_BUCKETS,
            )
        )
    )


@functools.cache
def relayed_metrics_address() -> str:
    """The internal ``127.0.0.1:port`` of this process's SDK metrics, picked once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return f"127.0.0.1:{port}"


async def connect(config: TemporalSettings) -> Client:
    tls: TLSConfig | bool = False
    if config.uses_tls:
        tls = TLSConfig(
            server_root_ca_cert=config.temporal_tls_ca.read_bytes()
            if config.temporal_tls_ca
            else None,
            client_cert=config.temporal_tls_cert.read_bytes() if config.temporal_tls_cert else None,
            client_private_key=config.temporal_tls_key.read_bytes()
            if config.temporal_tls_key
            else None,
        )
    api_key = (
        config.temporal_api_key_file.read_text().strip() if config.temporal_api_key_file else None
    )
    return await Client.connect(
        config.temporal_address,
        namespace=config.temporal_namespace,
        tls=tls,
        api_key=api_key,
        runtime=metrics_runtime(relayed_metrics_address()) if config.metrics_bind else None,
    )
