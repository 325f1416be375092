"""A worker registers acmeflow's search attributes on a Temporal that lacks them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client

from acmeflow.devstack.processes import ServerProcess, free_port, port_open, stop_pid_file
from acmeflow.devstack.temporal_server import temporal_cli
from acmeflow.worker.search_attribute_setup import ensure_search_attributes
from acmeflow.workflows.search_attributes import SEARCH_ATTRIBUTE_TYPES


@pytest.fixture
async def bare_temporal(tmp_path: Path) -> AsyncIterator[Client]:
    """A second dev server, started without any acmeflow search attribute."""
    port = free_port()
    server = ServerProcess(
        name="bare-temporal",
        argv=[
            temporal_cli(),
            "server",
            "start-dev",
            "--headless",
            "--ip",
            "127.0.0.1",
            "--port",
            str(port),
            "--http-port",
            str(free_port()),
            "--metrics-port",
            str(free_port()),
        ],
        state_dir=tmp_path,
        healthy=lambda: port_open(port),
    )
    server.start()
    try:
        server.wait_healthy(60)
        yield await Client.connect(f"127.0.0.1:{port}")
    finally:
        stop_pid_file(server.pid_path)


async def test_missing_search_attributes_are_registered_once(bare_temporal: Client) -> None:
    async def registered() -> set[str]:
        response = await bare_temporal.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace="default")
        )
        return set(response.custom_attributes)

    assert not set(SEARCH_ATTRIBUTE_TYPES) & await registered()
    assert await ensure_search_attributes(bare_temporal) == sorted(SEARCH_ATTRIBUTE_TYPES)
    assert set(SEARCH_ATTRIBUTE_TYPES) <= await registered()
    assert await ensure_search_attributes(bare_temporal) == []
