"""The stack's HTTP-01 responder on the port Pebble validates against."""

from __future__ import annotations

import sys
import urllib.request
from pathlib import Path

from acmeflow.devstack.processes import ServerProcess


def solver_process(state_dir: Path, *, port: int, store: Path, kubeconfig: Path) -> ServerProcess:
    """Serves tokens from the directory (``acmeflow issue``) and from Challenge resources."""

    def healthy() -> bool:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return int(response.status) == 200

    listen = f"127.0.0.1:{port}"
    return ServerProcess(
        name="http01-solver",
        argv=[
            sys.executable,
            "-m",
            "acmeflow.cli",
            "solver",
            "--listen",
            listen,
            "--store-dir",
            str(store),
            "--kubernetes",
            "--kubeconfig",
            str(kubeconfig),
        ],
        state_dir=state_dir,
        healthy=healthy,
    )
