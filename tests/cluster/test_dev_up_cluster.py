"""``acmeflow dev up --temporal cluster``: the stack with a Temporal cluster, as the README says."""

from __future__ import annotations

import subprocess
from pathlib import Path

from acmeflow.devstack.processes import pid_alive
from acmeflow.devstack.temporal_server import temporal_cli
from tests.stack.test_dev_cli import acmeflow

CLUSTER_ROWS = (
    "postgres",
    "temporal-history",
    "temporal-matching",
    "temporal-frontend",
    "temporal-worker",
)


def test_dev_up_with_a_temporal_cluster(tmp_path: Path, stack: object) -> None:
    state_dir = tmp_path / "dev-cluster"
    up = acmeflow("up", "--detach", "--temporal", "cluster", state_dir=state_dir)
    try:
        assert up.returncode == 0, up.stderr
        assert "Temporal UI: none (a cluster has no UI here)" in up.stdout
        status = acmeflow("status", state_dir=state_dir)
        assert status.returncode == 0, status.stdout
        rows = {line.split()[0]: line.split()[-1] for line in status.stdout.splitlines()[1:]}
        assert {name: rows.get(name) for name in CLUSTER_ROWS} == dict.fromkeys(CLUSTER_ROWS, "yes")
        assert "temporal" not in rows, "the dev server does not run beside the cluster"
        assert rows["acmeflow-worker"] == rows["acmeflow-bridge"] == "yes"
        exports = acmeflow("env", state_dir=state_dir).stdout
        described = subprocess.run(
            [
                "bash",
                "-c",
                f"{exports}\n{temporal_cli()} operator namespace describe -n default"
                ' --address "$TEMPORAL_ADDRESS" -o json',
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert '"name": "default"' in described.stdout, described.stderr
    finally:
        pids = [int(p.read_text()) for p in (state_dir / "pids").glob("*.pid")]
        acmeflow("down", state_dir=state_dir)
    assert len(pids) >= len(CLUSTER_ROWS) and not any(pid_alive(pid) for pid in pids)
