"""The three processes a fault run kills: its own Temporal dev server, a worker, a bridge.

Each is started with the command line an operator uses (``temporal server start-dev`` with
a persistent ``--db-filename``; ``acmeflow worker`` and ``acmeflow bridge`` as ``acmeflow
dev up`` runs them), in its own process group, so ``SIGKILL`` takes it down at once with no
chance to finish a step or say goodbye. A kill is followed by a start of the same command
line, on the same ports and the same SQLite file.

The Temporal server is the run's own, never the session's shared one: nothing else polls
it, so the default task queues are the run's alone and every workflow listed in it is the
run's.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from harness.acmeflow_api import (
    ServerProcess,
    StackInfo,
    component_processes,
    free_port,
    log_tail,
    stop_pid_file,
    temporal_process,
)

START_TIMEOUT_S = 90.0
"""How long a (re)started process may take to answer: guards against a hang only."""
_REAP_TIMEOUT_S = 15.0


class ProcessDied(RuntimeError):
    """A process of the run exited without being killed; the message carries its log."""


@dataclass
class Restartable:
    """One process, SIGKILLed and started again with its own command line."""

    server: ServerProcess
    ready_marker: str = ""
    """A log line that says it is up; empty: the server's own health probe decides."""
    starts: int = 0
    kills: int = 0
    pids: list[int] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.server.name

    @property
    def pid(self) -> int:
        return self.server.popen.pid if self.server.popen is not None else 0

    def alive(self) -> bool:
        return self.server.popen is not None and self.server.popen.poll() is None

    def log(self, lines: int = 40) -> str:
        return log_tail(self.server.log_path, lines)

    def start(self) -> None:
        """Start the command line and return once the process answers."""
        log_path = self.server.log_path
        offset = log_path.stat().st_size if log_path.exists() else 0
        self.server.start()
        self.starts += 1
        self.pids.append(self.pid)
        if not self.ready_marker:
            self.server.wait_healthy(START_TIMEOUT_S)
            return
        deadline = time.monotonic() + START_TIMEOUT_S
        while self.ready_marker not in _read_from(log_path, offset):
            if not self.alive():
                raise ProcessDied(f"{self.name} exited at start:\n{self.log()}")
            if time.monotonic() > deadline:
                raise ProcessDied(f"{self.name} not up after {START_TIMEOUT_S:.0f}s:\n{self.log()}")
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL the whole process group and reap it."""
        popen = self.server.popen
        assert popen is not None, f"{self.name} never started"
        os.killpg(popen.pid, signal.SIGKILL)
        popen.wait(_REAP_TIMEOUT_S)
        self.kills += 1

    def stop(self) -> None:
        stop_pid_file(self.server.pid_path)


def _read_from(path: Path, offset: int) -> str:
    with path.open("rb") as log:
        log.seek(offset)
        return log.read().decode(errors="replace")


class FaultProcesses:
    """A private Temporal, and a worker and a bridge pointed at it and at the stack."""

    def __init__(self, stack: StackInfo, run_dir: Path) -> None:
        ports = {
            "port": free_port(),
            "ui_port": free_port(),
            "metrics_port": free_port(),
            "http_port": free_port(),
        }
        self.temporal_address = f"127.0.0.1:{ports['port']}"
        self.temporal = Restartable(temporal_process(run_dir, **ports))
        own = stack.model_copy(update={"temporal_address": self.temporal_address})
        worker, bridge = component_processes(run_dir, own, stack.ports.dns)
        # HTTP-01 tokens in the stack's responder directory (as every stack test's worker),
        # so a token left behind is a file to find; Secrets and Certificate steps in the cluster.
        worker = replace(
            worker,
            argv=[
                *worker.argv,
                "--http01-store-dir",
                str(stack.http01_store),
                "--graceful-shutdown-s",
                "1",
            ],
        )
        self.worker = Restartable(worker, ready_marker="worker polling")
        self.bridge = Restartable(bridge, ready_marker="bridge running")

    def __iter__(self) -> Iterator[Restartable]:
        return iter((self.temporal, self.worker, self.bridge))

    def by_name(self, name: str) -> Restartable:
        return {"temporal": self.temporal, "worker": self.worker, "bridge": self.bridge}[name]

    def start(self) -> None:
        for process in self:
            process.start()

    def check_alive(self) -> None:
        """Raise if a process exited that nobody killed."""
        for process in self:
            if not process.alive():
                raise ProcessDied(
                    f"{process.name} (pid {process.pid}) exited by itself with "
                    f"{process.server.popen.returncode if process.server.popen else '?'}:\n"
                    f"{process.log()}"
                )

    def restart(self, name: str) -> Restartable:
        """SIGKILL ``name`` and start it again with its own command line."""
        process = self.by_name(name)
        process.kill()
        process.start()
        return process

    def stop(self) -> None:
        for process in (self.bridge, self.worker, self.temporal):
            process.stop()

    def logs(self, lines: int = 40) -> str:
        return "\n".join(f"--- {p.name} ({p.server.log_path}):\n{p.log(lines)}" for p in self)
