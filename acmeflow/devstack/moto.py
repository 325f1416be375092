"""moto's server, the AWS community's emulator, as the stack's Route53 (and STS, IAM).

The stack's moto checks no credentials: any key pair is accepted, as AWS would accept a
valid one. A test of refused credentials starts a second moto with IAM authentication on
(``auth_after``): after that many unauthenticated calls, which create the IAM user and
the hosted zone, every request must be signed by a key moto issued.
"""

from __future__ import annotations

import sys
import urllib.request
from pathlib import Path

from acmeflow.devstack.processes import ServerProcess, free_port, stop_pid_file

PROCESS_NAME = "moto"
HEALTH_TIMEOUT_S = 30.0


def moto_url(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def moto_process(
    state_dir: Path, *, port: int, name: str = PROCESS_NAME, auth_after: int | None = None
) -> ServerProcess:
    """moto on 127.0.0.1:``port``; ``auth_after`` turns IAM authentication on after that
    many requests (moto's ``INITIAL_NO_AUTH_ACTION_COUNT``)."""

    def healthy() -> bool:
        with urllib.request.urlopen(f"{moto_url(port)}/moto-api/", timeout=2) as response:
            return int(response.status) == 200

    env = {} if auth_after is None else {"INITIAL_NO_AUTH_ACTION_COUNT": str(auth_after)}
    return ServerProcess(
        name=name,
        argv=[sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        state_dir=state_dir,
        healthy=healthy,
        env=env,
    )


def start_extra_moto(state_dir: Path, *, name: str, auth_after: int) -> tuple[ServerProcess, str]:
    """A moto of its own beside the stack's, with IAM authentication on; its URL.

    Stop it with ``stop_pid_file(process.pid_path)``.
    """
    port = free_port()
    process = moto_process(state_dir, port=port, name=name, auth_after=auth_after)
    process.start()
    try:
        process.wait_healthy(HEALTH_TIMEOUT_S)
    except BaseException:
        stop_pid_file(process.pid_path)
        raise
    return process, moto_url(port)
