"""Session fixtures: the embedded real stack, started once, its logs shown on failure.

Set ``ACMEFLOW_TEST_STACK_DIR`` to reuse a stack already running from ``acmeflow dev up``
(fast local iteration). ``ACMEFLOW_TEST_TEMPORAL=cluster`` runs the session against
a Temporal cluster (four services over PostgreSQL) instead of the dev server. Under
``CI=true`` a server that cannot start fails the run.
``cert_manager`` adds cert-manager's controllers to the session stack on demand; on a
reused stack the session runs (and stops) a controllers process of its own.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from temporalio.client import Client

from acmeflow.devstack.cert_manager import PROCESS_NAME, CertManagerInfo, start_cert_manager
from acmeflow.devstack.go_builds import cert_manager_binary
from acmeflow.devstack.processes import ServerFailed, log_tail
from acmeflow.devstack.stack import DevStack, StackInfo

_running: list[StackInfo] = []

collect_ignore = [] if os.environ.get("ACMEFLOW_TEST_TEMPORAL") == "cluster" else ["cluster"]
"""tests/cluster needs the session stack on a Temporal cluster; ``make test`` runs it so."""
_cert_managers: list[CertManagerInfo] = []


def _start_stack(state_dir: Path) -> tuple[StackInfo, DevStack | None]:
    reuse = os.environ.get("ACMEFLOW_TEST_STACK_DIR")
    if reuse:
        return StackInfo.load(Path(reuse)), None
    missing = [tool for tool in ("named", "pebble", "etcd", "go") if not _which(tool)]
    if missing:
        _fail_or_skip(f"the embedded stack needs {', '.join(missing)}: run `make setup`")
    stack = DevStack.create(state_dir, temporal=os.environ.get("ACMEFLOW_TEST_TEMPORAL", "dev"))
    try:
        return stack.up(), stack
    except (ServerFailed, RuntimeError) as error:
        pytest.fail(f"embedded stack failed to start: {error}", pytrace=False)


def _fail_or_skip(message: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


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
def cert_manager(stack: StackInfo) -> Iterator[CertManagerInfo]:
    """cert-manager's external-issuer controllers against the session stack, once a session.

    On a stack reused through ``ACMEFLOW_TEST_STACK_DIR`` the process gets a name of its
    own, so its pid file and log never clash with another session's; the processes of two
    such sessions take turns through cert-manager's leader Lease.
    """
    if not cert_manager_binary().is_file():
        _fail_or_skip(f"{cert_manager_binary()} is missing: run `make kube`")
    reused = bool(os.environ.get("ACMEFLOW_TEST_STACK_DIR"))
    name = f"{PROCESS_NAME}-session-{os.getpid()}" if reused else PROCESS_NAME
    try:
        info = start_cert_manager(stack.state_dir, stack, name=name)
    except (ServerFailed, RuntimeError) as error:
        pytest.fail(f"cert-manager's controllers failed to start: {error}", pytrace=False)
    _cert_managers.append(info)
    yield info
    _cert_managers.remove(info)
    info.stop()


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
        shown = sorted(logs.glob("*.log")) if logs.exists() else []
        shown = [log for log in shown if not log.stem.startswith(f"{PROCESS_NAME}-session-")]
        shown += [info.log_path for info in _cert_managers if info.log_path not in shown]
        for log in shown:
            report.sections.append((f"server log {log.stem}", log_tail(log, 30)))
