"""Connect to Temporal as configured: plain (dev server), mTLS, or Temporal Cloud API key.

With ``metrics_bind`` set, the client (and every worker built on it) runs on a Temporal
``Runtime`` that serves Prometheus ``/metrics`` there: the SDK's own metrics and
acmeflow's, one endpoint per process.
"""

from __future__ import annotations

import functools

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
        runtime=metrics_runtime(config.metrics_bind) if config.metrics_bind else None,
    )
