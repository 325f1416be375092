"""The README's stack commands work as documented: up --detach, status, env, down."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from acmeflow.devstack.processes import pid_alive


def acmeflow(*args: str, state_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "acmeflow.cli", "dev", "--state-dir", str(state_dir), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_dev_up_status_env_down(tmp_path: Path, stack: object) -> None:
    state_dir = tmp_path / "dev"
    up = acmeflow("up", "--detach", state_dir=state_dir)
    try:
        assert up.returncode == 0, up.stderr
        status = acmeflow("status", state_dir=state_dir)
        assert status.returncode == 0, status.stdout
        rows = {line.split()[0]: line.split()[-1] for line in status.stdout.splitlines()[1:]}
        assert rows == {
            name: "yes"
            for name in (
                "bind9",
                "powerdns",
                "pebble",
                "temporal",
                "etcd",
                "kube-apiserver",
                "kube-controller-manager",
                "http01-solver",
                "dns01-webhook",
                "moto",
                "acmeflow-worker",
                "acmeflow-bridge",
            )
        }

        exports = acmeflow("env", state_dir=state_dir).stdout
        env = dict(line.removeprefix("export ").split("=", 1) for line in exports.splitlines())
        assert Path(env["KUBECONFIG"]).exists()
        assert env["ACMEFLOW_ACME_SERVER"].startswith("https://127.0.0.1:")
        assert env["TEMPORAL_ADDRESS"].startswith("127.0.0.1:")
        kubectl = subprocess.run(
            ["bash", "-c", f"{exports}\nkubectl get namespace default -o name"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert kubectl.stdout.strip() == "namespace/default", kubectl.stderr
    finally:
        pids = [int(p.read_text()) for p in (state_dir / "pids").glob("*.pid")]
        down = acmeflow("down", state_dir=state_dir)
    assert down.returncode == 0
    assert pids and not any(pid_alive(pid) for pid in pids)
    after = acmeflow("status", state_dir=state_dir)
    assert after.returncode == 1
    assert "yes" not in after.stdout


def test_dev_env_without_a_stack_says_what_to_do(tmp_path: Path) -> None:
    result = acmeflow("env", state_dir=tmp_path / "none")
    assert result.returncode != 0
    assert "acmeflow dev up --detach" in result.stderr
    assert result.stdout == ""


def test_dev_up_servers_only_runs_no_acmeflow_processes(tmp_path: Path, stack: object) -> None:
    state_dir = tmp_path / "servers-only"
    up = acmeflow("up", "--detach", "--servers-only", state_dir=state_dir)
    try:
        assert up.returncode == 0, up.stderr
        names = {
            line.split()[0]
            for line in acmeflow("status", state_dir=state_dir).stdout.splitlines()[1:]
        }
        assert "temporal" in names and "http01-solver" in names
        assert not names & {"acmeflow-worker", "acmeflow-bridge"}
    finally:
        acmeflow("down", state_dir=state_dir)
