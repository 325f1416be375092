"""``acmeflow solver`` as a real process on a free port, and HTTP requests to it."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class Reply:
    status: int
    body: str


@dataclass
class SolverProcess:
    process: subprocess.Popen[str]
    port: int
    log_path: Path

    def get(self, path: str, host: str = "localhost") -> Reply:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            connection.request("GET", path, headers={"Host": host})
            response = connection.getresponse()
            return Reply(response.status, response.read().decode())
        finally:
            connection.close()

    def token(self, token: str, host: str) -> Reply:
        return self.get(f"/.well-known/acme-challenge/{token}", host)

    def wait_for(self, token: str, host: str, status: int, timeout_s: float = 10.0) -> Reply:
        """Poll until the token answers ``status``; fail with the last reply and the log."""
        deadline = time.monotonic() + timeout_s
        reply = self.token(token, host)
        while reply.status != status and time.monotonic() < deadline:
            time.sleep(0.05)
            reply = self.token(token, host)
        assert reply.status == status, (
            f"token {token} for {host}: {reply} after {timeout_s}s\n{self.log()}"
        )
        return reply

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def terminate(self, timeout_s: float = 10.0) -> int:
        """SIGTERM, then the exit code (the process must stop within ``timeout_s``)."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout_s)


@contextmanager
def running_solver(
    *args: str, log_path: Path, ready_timeout_s: float = 20.0, wait_for: str = "/readyz"
) -> Iterator[SolverProcess]:
    """``python -m acmeflow.cli solver <args> --listen 127.0.0.1:<free port>``.

    Yields once ``wait_for`` answers 200 (``/healthz``: listening, maybe not loaded yet).
    """
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "acmeflow.cli",
        "--log-level",
        "DEBUG",
        "solver",
        *args,
        "--listen",
        f"127.0.0.1:{port}",
    ]
    with log_path.open("w") as log:
        process = subprocess.Popen(
            command,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    solver = SolverProcess(process, port, log_path)
    try:
        deadline = time.monotonic() + ready_timeout_s
        while True:
            assert process.poll() is None, f"solver exited {process.returncode}:\n{solver.log()}"
            try:
                if solver.get(wait_for).status == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"solver not ready:\n{solver.log()}"
            time.sleep(0.1)
        yield solver
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
