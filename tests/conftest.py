"""Session fixtures: the embedded real stack, started once, its logs shown on failure.

Set ``ACMEFLOW_TEST_STACK_DIR`` to reuse a stack already running from ``acmeflow dev up``
(fast local iteration). Under ``CI=true`` a server that cannot start fails the run.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from temporalio.client import Client

from acmeflow.devstack.processes import ServerFailed, log_tail
from acmeflow.devstack.stack import DevStack, StackInfo

_running: list[StackInfo] = []


def _start_stack(state_dir: Path) -> tuple[StackInfo, DevStack | None]:
    reuse = os.environ.get("ACMEFLOW_TEST_STACK_DIR")
    if reuse:
        return StackInfo.load(Path(reuse)), None
    missing = [tool for tool in ("named", "pebble", "etcd", "go") if not _which(tool)]
    if missing:
        message = f"the embedded stack needs {', '.join(missing)}: run `make setup`"
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    stack = DevStack.create(state_dir)
    try:
        return stack.up(), stack
    except (ServerFailed, RuntimeError) as error:
        pytest.fail(f"embedded stack failed to start: {error}", pytrace=False)


def _which(tool: str) -> str | None:
    return shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/usr/local/go/bin")


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackInfo]:
    info, owned = _start_stack(tmp_path_factory.mktemp("stack"))
    _running.append(info)
    yield info
    if owned is not None:
        owned.down()


@pytest.fixture(scope="session")
async def temporal_client(stack: StackInfo) -> AsyncIterator[Client]:
    yield await Client.connect(stack.temporal_address, namespace=stack.temporal_namespace)


@pytest.fixture
def task_queue() -> str:
    """Each test its own task queue, so leftovers of one test never reach another."""
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.failed and _running:
        logs = _running[0].state_dir / "logs"
        for log in sorted(logs.glob("*.log")) if logs.exists() else []:
            report.sections.append((f"server log {log.stem}", log_tail(log, 30)))
