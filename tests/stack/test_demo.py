"""``make demo``'s main job runs on a fresh stack and shows what the README promises."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from acmeflow.devstack.stack import DevStack, StackInfo

REPO = Path(__file__).resolve().parents[2]


def test_demo_issues_standalone_and_through_kubernetes(tmp_path: Path, stack: StackInfo) -> None:
    state_dir = tmp_path / "demo-stack"
    env = {
        **os.environ,
        "ACMEFLOW_STATE_DIR": str(state_dir),
        "DEMO_OUT": str(tmp_path / "certs"),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    try:
        demo = subprocess.run(
            ["bash", str(REPO / "deploy" / "demo.sh")],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    finally:
        if (state_dir / "stack.json").exists():
            DevStack.existing(state_dir).down()
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    out = demo.stdout
    assert "DNS:test1.example.com, DNS:test2.example.com" in out
    assert (tmp_path / "certs" / "tls.key").exists()
    assert "State:         valid" in out
    assert "Created Challenge resource" in out
    assert "Order completed successfully" in out
    assert 'verified with "HTTP-01" validation' in out
    assert "WorkflowId            order/demo/" in out
