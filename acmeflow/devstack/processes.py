"""Start, watch and stop the stack's server processes by pid.

Each server writes its output to ``<state>/logs/<name>.log`` and its pid to
``<state>/pids/<name>.pid``; ``acmeflow dev down`` and a test teardown stop servers
through those files, so a detached stack can be stopped from another shell.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path


class ServerFailed(RuntimeError):
    """A server exited or did not become healthy; the message carries its log tail."""


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_low_port(below: int = 32768) -> int:
    """A free port under ``below`` (the ephemeral range starts above it on Linux)."""
    while True:
        port = random.randrange(20000, below)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def log_tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return f"(no log at {path})"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        status = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return True
    return status != "Z"


@dataclass
class ServerProcess:
    """One long-running server of the stack."""

    name: str
    argv: Sequence[str]
    state_dir: Path
    healthy: Callable[[], bool]
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    depends_on: tuple[ServerProcess, ...] = ()
    popen: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.state_dir / "logs" / f"{self.name}.log"

    @property
    def pid_path(self) -> Path:
        return self.state_dir / "pids" / f"{self.name}.pid"

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.pid_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(
                f"\n=== {time.strftime('%H:%M:%S')} starting: {' '.join(self.argv)}\n".encode()
            )
            log.flush()
            self.popen = subprocess.Popen(
                list(self.argv),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **self.env},
                cwd=self.cwd,
                start_new_session=True,
            )
        self.pid_path.write_text(str(self.popen.pid))

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen is not None and self.popen.poll() is not None:
                raise ServerFailed(
                    f"{self.name} exited with {self.popen.returncode}:\n{log_tail(self.log_path)}"
                )
            try:
                if self.healthy():
                    return
            except Exception:  # noqa: BLE001 - any failure of a probe means "not yet"
                pass
            time.sleep(0.2)
        raise ServerFailed(
            f"{self.name} not healthy after {timeout:.0f}s:\n{log_tail(self.log_path)}"
        )


def stop_pid_file(pid_path: Path, timeout: float = 10.0) -> bool:
    """Stop the process group recorded in ``pid_path``; True if something was running."""
    if not pid_path.exists():
        return False
    pid = int(pid_path.read_text().strip() or 0)
    pid_path.unlink()
    if pid <= 0 or not pid_alive(pid):
        return False
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return True
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            if not pid_alive(pid):
                return True
            time.sleep(0.1)
    return True
