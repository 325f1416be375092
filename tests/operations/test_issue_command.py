"""``acmeflow issue`` prints its lines in the order things happened.

One of two names is served (its challenge is verified at once), the other is not (its
self-check waits for an address that never comes), so the order stays ``solving 2
challenge(s)`` while events keep arriving behind it. The step line must come where the
step began: after the Challenges were created and before any was started, never below a
``DomainVerified`` that came later.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

from temporalio.client import Client

from acmeflow.devstack.stack import StackInfo

WAIT_S = 90.0
"""Safety net only: how long to read the command's output before giving up."""


def _read_until(process: subprocess.Popen[str], seen: str) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + WAIT_S
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if seen in line:
            return lines
    raise AssertionError(f"never printed {seen!r}; printed:\n" + "\n".join(lines))


def _cancel(stack: StackInfo, workflow_id: str) -> None:
    async def cancel() -> None:
        client = await Client.connect(stack.temporal_address)
        await client.get_workflow_handle(workflow_id).cancel()

    asyncio.run(cancel())


def test_issue_prints_the_solving_step_before_the_challenges_it_started(
    stack: StackInfo, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:6]
    served, unserved = f"served-{tag}.example.com", f"unserved-{tag}.unserved.test"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    argv = ["acmeflow", "--log-level", "WARNING", "issue", served, unserved]
    argv += ["--solver", "http01", "--state-dir", str(stack.state_dir), "--out", str(tmp_path)]
    process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, text=True)
    try:
        lines = _read_until(process, f'Domain "{served}" verified')
        workflow_id = lines[0].split()[1]
        assert workflow_id.startswith("order/standalone/")
        # Cancel while the command's worker runs, so the order cleans up after itself.
        _cancel(stack, workflow_id)
        rest, _ = process.communicate(timeout=WAIT_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 1
    output = lines + rest.splitlines()

    def first(text: str) -> int:
        found = [i for i, line in enumerate(output) if text in line]
        assert found, f"{text!r} was not printed in time; printed:\n" + "\n".join(output)
        return found[0]

    created = [i for i, line in enumerate(output) if "- Created: Created Challenge" in line]
    solving = first("[pending] solving 2 challenge(s)")
    assert len(created) == 2
    assert max(created) < solving < first("- Started: Challenge scheduled for processing")
    assert solving < first(f'- DomainVerified: Domain "{served}" verified')
    assert "order failed" not in "\n".join(output)  # that goes to stderr
