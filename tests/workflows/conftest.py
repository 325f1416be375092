"""Time-skipping workflow tests: Temporal's test server, activities replaced by doubles.

The server is the Java build ``make setup`` installs (``python -m
acmeflow.devstack.time_skipping_server``). Without it these tests skip locally and fail
under ``CI=true``, as the real-stack tests do. Each test gets a server of its own (it
starts in about half a second): the test server's clock stops skipping for good when a
workflow is terminated in the middle of a task, so one test's leftovers would stall the
next one's timers.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator

import pytest
from temporalio.testing import WorkflowEnvironment

from acmeflow.devstack.time_skipping_server import server_command
from tests.workflows.doubles import start_test_server


def _missing_server() -> str:
    if not server_command().is_file():
        return (
            f"no time-skipping test server at {server_command()}: run `make setup` "
            "(python -m acmeflow.devstack.time_skipping_server)"
        )
    if shutil.which("java") is None:
        return "the time-skipping test server needs java: run `make system`"
    return ""


@pytest.fixture(scope="session")
def test_server() -> None:
    missing = _missing_server()
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(missing, pytrace=False)
        pytest.skip(missing)


@pytest.fixture
async def workflow_env(test_server: None) -> AsyncIterator[WorkflowEnvironment]:
    env = await start_test_server()
    yield env
    await env.shutdown()
