"""``acmeflow worker`` with workflow code run outside the sandbox: a measurement switch only.

``bench/orders.py --unsandboxed`` runs the worker as ``python -m unsandboxed_worker
worker ...`` to measure what the sandbox costs per workflow run. The worker is built by
the same ``build_worker``; only its workflow runner is ``UnsandboxedWorkflowRunner``, which
gives up the sandbox's checks for determinism. Not for production.
"""

from __future__ import annotations

import sys

from temporalio.worker import UnsandboxedWorkflowRunner

from acmeflow import cli
from acmeflow.worker import build


def unsandboxed_runner() -> UnsandboxedWorkflowRunner:
    return UnsandboxedWorkflowRunner()


if __name__ == "__main__":
    build.workflow_runner = unsandboxed_runner  # type: ignore[assignment,attr-defined]
    sys.exit(cli.main())
