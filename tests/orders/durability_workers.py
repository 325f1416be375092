"""Real ``acmeflow worker`` processes to kill, and what a workflow's history says about it.

A worker runs exactly as an operator starts it (``python -m acmeflow.cli worker``), in its
own process group, so ``SIGKILL`` takes it down at once with no chance to finish an
activity or to tell Temporal. Temporal's default worker identity is ``<pid>@<host>``,
which is how the history shows which process did what.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

from temporalio.api.enums.v1 import EventType, TimeoutType
from temporalio.client import WorkflowHandle
from temporalio.service import RPCError

from acmeflow.contracts.progress import OrderProgress
from acmeflow.devstack.bind import self_check_nameserver_flags
from acmeflow.devstack.processes import log_tail
from acmeflow.devstack.stack import StackInfo
from acmeflow.workflows.order import OrderResult, OrderWorkflow

REPO_ROOT = Path(__file__).resolve().parents[2]
_STOP_WAIT_S = 15.0

T = TypeVar("T")


@dataclass
class WorkerProcess:
    """One ``acmeflow worker`` process and its log."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def identity(self) -> str:
        """How Temporal's history names this worker (the SDK default identity)."""
        return f"{self.pid}@{socket.gethostname()}"

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log(self) -> str:
        return log_tail(self.log_path, 40)

    def kill(self) -> None:
        """SIGKILL the whole process group and reap it."""
        os.killpg(self.pid, signal.SIGKILL)
        self.popen.wait(timeout=_STOP_WAIT_S)

    def stop(self) -> None:
        """SIGTERM (graceful), then SIGKILL if it lingers; nothing if already gone."""
        if not self.alive():
            return
        try:
            os.killpg(self.pid, signal.SIGTERM)
            self.popen.wait(timeout=_STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            self.kill()
        except ProcessLookupError:
            pass


class WorkerGroup:
    """The workers of one test; every one still running is stopped on exit."""

    def __init__(self, stack: StackInfo, task_queue: str, log_dir: Path) -> None:
        self._stack = stack
        self._task_queue = task_queue
        self._log_dir = log_dir
        self.started: list[WorkerProcess] = []

    def start(
        self,
        name: str,
        *,
        self_check_http01_port: int | None = None,
        self_check_dns_port: int | None = None,
    ) -> WorkerProcess:
        worker = start_worker(
            name,
            self._stack,
            self._task_queue,
            self._log_dir,
            self_check_http01_port=self_check_http01_port,
            self_check_dns_port=self_check_dns_port,
        )
        self.started.append(worker)
        return worker

    def __enter__(self) -> WorkerGroup:
        return self

    def __exit__(self, *_: object) -> None:
        for worker in self.started:
            worker.stop()


def start_worker(
    name: str,
    stack: StackInfo,
    task_queue: str,
    log_dir: Path,
    *,
    self_check_http01_port: int | None = None,
    self_check_dns_port: int | None = None,
    extra_args: Sequence[str] = (),
) -> WorkerProcess:
    """Start ``acmeflow worker`` against the stack; the ports default to the real servers."""
    log_path = log_dir / f"{name}.log"
    argv = [
        sys.executable,
        "-m",
        "acmeflow.cli",
        "worker",
        "--temporal-address",
        stack.temporal_address,
        "--temporal-namespace",
        stack.temporal_namespace,
        "--task-queue",
        task_queue,
        "--http01-store-dir",
        str(stack.http01_store),
        "--self-check-resolver",
        stack.dns_address,
        "--self-check-http01-port",
        str(self_check_http01_port or stack.http01_port),
        "--self-check-dns-port",
        str(self_check_dns_port or stack.ports.dns),
        *self_check_nameserver_flags(stack.ports.powerdns),
        "--graceful-shutdown-s",
        "1",
        *extra_args,
    ]
    with log_path.open("ab") as log:
        popen = subprocess.Popen(
            argv,
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return WorkerProcess(name, popen, log_path)


async def eventually(
    probe: Callable[[], Awaitable[T | None]],
    what: str,
    *,
    timeout: float,
    workers: tuple[WorkerProcess, ...] = (),
    interval: float = 0.1,
) -> T:
    """Poll ``probe`` until it returns the thing it looks for; fail naming ``what`` and the
    worker logs.

    "Not yet" is ``None`` and nothing else: a probe that answers ``False`` would otherwise
    count as found, so a bool is refused outright.
    """
    deadline = time.monotonic() + timeout
    while True:
        for worker in workers:
            if not worker.alive():
                raise AssertionError(
                    f"while waiting for {what}: worker {worker.name} exited "
                    f"with {worker.popen.returncode}:\n{worker.log()}"
                )
        found = await probe()
        if isinstance(found, bool):
            raise TypeError(
                f"the probe for {what} returned {found!r}: return what it found, or None"
            )
        if found is not None:
            return found
        if time.monotonic() >= deadline:
            logs = "\n".join(f"--- {w.name}:\n{w.log()}" for w in workers)
            raise AssertionError(f"no {what} within {timeout:.0f}s\n{logs}")
        await asyncio.sleep(interval)


async def current_progress(
    handle: WorkflowHandle[OrderWorkflow, OrderResult],
) -> OrderProgress | None:
    """The workflow's progress, or None while no worker can answer yet."""
    try:
        return await handle.query(OrderWorkflow.progress, rpc_timeout=timedelta(seconds=5))
    except RPCError:
        return None


async def result_within(
    handle: WorkflowHandle[OrderWorkflow, OrderResult],
    timeout: float,
    workers: tuple[WorkerProcess, ...],
) -> OrderResult:
    """The workflow's result; on timeout, fail with each worker's log."""
    try:
        return await asyncio.wait_for(handle.result(), timeout)
    except TimeoutError:
        logs = "\n".join(f"--- {w.name}:\n{w.log()}" for w in workers)
        raise AssertionError(f"{handle.id} did not finish within {timeout:.0f}s\n{logs}") from None


@dataclass(frozen=True)
class ActivityAttempt:
    activity: str
    attempt: int
    identity: str
    last_failure: str


@dataclass
class RunHistory:
    """What one workflow run's history says about who did what, and what went wrong."""

    run_id: str
    event_types: list[str] = field(default_factory=list)
    scheduled_activities: list[str] = field(default_factory=list)
    """One entry per activity the workflow scheduled (a retry is not a new schedule)."""
    activity_attempts: list[ActivityAttempt] = field(default_factory=list)
    """The attempt that ended each scheduled activity (earlier attempts leave no event)."""
    workflow_task_timeouts: list[str] = field(default_factory=list)
    workflow_task_identities: list[str] = field(default_factory=list)

    def activities_by(self, identity: str) -> list[str]:
        return [a.activity for a in self.activity_attempts if a.identity == identity]

    @property
    def retried(self) -> list[ActivityAttempt]:
        return [a for a in self.activity_attempts if a.attempt > 1]

    @property
    def completed_by(self) -> str:
        """Identity of the worker that completed the last workflow task (closed the run)."""
        return self.workflow_task_identities[-1] if self.workflow_task_identities else ""

    def attempts_of(self, activity: str) -> list[ActivityAttempt]:
        return [a for a in self.activity_attempts if a.activity == activity]


async def run_history(handle: WorkflowHandle[OrderWorkflow, OrderResult]) -> RunHistory:
    history = await handle.fetch_history()
    result = RunHistory(run_id=handle.result_run_id or "")
    activity_types: dict[int, str] = {}
    for event in history.events:
        result.event_types.append(EventType.Name(event.event_type))
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            name = event.activity_task_scheduled_event_attributes.activity_type.name
            activity_types[event.event_id] = name
            result.scheduled_activities.append(name)
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            started = event.activity_task_started_event_attributes
            result.activity_attempts.append(
                ActivityAttempt(
                    activity=activity_types[started.scheduled_event_id],
                    attempt=started.attempt,
                    identity=started.identity,
                    last_failure=started.last_failure.message,
                )
            )
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT:
            timeout = event.workflow_task_timed_out_event_attributes.timeout_type
            result.workflow_task_timeouts.append(TimeoutType.Name(timeout))
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            result.workflow_task_identities.append(
                event.workflow_task_completed_event_attributes.identity
            )
    return result
