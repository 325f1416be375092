"""Debian's PostgreSQL for the Temporal cluster: one throwaway server per state directory.

PostgreSQL refuses to run as root, so under root the server runs as the ``postgres``
account that Debian's package creates, and its data lives where that account can reach
(pytest's temporary directories are private to root).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from acmeflow.devstack.processes import ServerProcess

USER = "temporal"
PASSWORD = "temporal"


def postgres_bin_dir() -> Path:
    """The newest installed server's binaries (``/usr/lib/postgresql/<major>/bin``)."""
    majors = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=_major)
    if not majors:
        raise FileNotFoundError("PostgreSQL is missing: run `make setup` (apt postgresql)")
    return majors[-1].parent


def _major(path: Path) -> int:
    name = path.parent.parent.name
    return int(name) if name.isdigit() else 0


def _as_postgres() -> list[str]:
    if os.geteuid() != 0:
        return []
    return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"]


@dataclass(frozen=True)
class PostgresEndpoints:
    port: int
    data_dir: Path

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


def data_dir_for(state_dir: Path) -> Path:
    if os.geteuid() != 0:
        return state_dir / "postgres"
    digest = hashlib.sha256(str(state_dir.resolve()).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"acmeflow-postgres-{digest}"


def init_cluster(endpoints: PostgresEndpoints) -> None:
    """``initdb`` once, with the temporal superuser trusted on loopback only."""
    data = endpoints.data_dir
    if (data / "PG_VERSION").exists():
        return
    data.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(data, "postgres", "postgres")
    password_file = data.parent / f"{data.name}.pw"
    password_file.write_text(PASSWORD + "\n")
    if os.geteuid() == 0:
        shutil.chown(password_file, "postgres", "postgres")
    try:
        subprocess.run(
            [
                *_as_postgres(),
                str(postgres_bin_dir() / "initdb"),
                "-D",
                str(data),
                "-U",
                USER,
                "--auth=md5",
                f"--pwfile={password_file}",
                "-E",
                "UTF8",
            ],
            check=True,
            capture_output=True,
        )
    finally:
        password_file.unlink(missing_ok=True)


def postgres_process(state_dir: Path, *, port: int) -> tuple[ServerProcess, PostgresEndpoints]:
    endpoints = PostgresEndpoints(port, data_dir_for(state_dir))
    argv = [
        *_as_postgres(),
        str(postgres_bin_dir() / "postgres"),
        "-D",
        str(endpoints.data_dir),
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "-k",
        str(endpoints.data_dir),
        "-c",
        "max_connections=300",
        # Throwaway test data: a killed server may lose its last commits, never its files.
        "-c",
        "fsync=off",
        "-c",
        "synchronous_commit=off",
    ]
    process = ServerProcess(
        name="postgres",
        argv=argv,
        state_dir=state_dir,
        healthy=lambda: _accepts(endpoints),
    )
    return process, endpoints


def _accepts(endpoints: PostgresEndpoints) -> bool:
    answer = subprocess.run(
        [str(postgres_bin_dir() / "pg_isready"), "-h", "127.0.0.1", "-p", str(endpoints.port)],
        capture_output=True,
        check=False,
    )
    return answer.returncode == 0
