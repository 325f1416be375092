"""Connect to Temporal as configured: plain (dev server), mTLS, or Temporal Cloud API key."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.service import TLSConfig

from worker.config import TemporalSettings


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
        config.temporal_address, namespace=config.temporal_namespace, tls=tls, api_key=api_key
    )
