"""The workflow sandbox, with native-extension libraries passed through.

Workflows never call these libraries, but modules they import for types do import them,
and re-importing a Rust/C extension inside the sandbox fails (cryptography's does).
"""

from __future__ import annotations

from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

PASSED_THROUGH = (
    "cryptography",
    "josepy",
    "acme",
    "dns",
    "requests",
    "urllib3",
    "kubernetes",
    "yaml",
    "pydantic",
    "pydantic_core",
    # Pure value modules the workflows share: re-importing them per run costs CPU
    # (about a tenth of a busy worker's) and buys no isolation, as they hold no state.
    "acmeflow.activities",
    "acmeflow.contracts",
    "acmeflow.workflows.search_attributes",
    "acmeflow.workflows.solver_selection",
    "acmeflow.workflows.resource_ids",
)


def workflow_runner() -> SandboxedWorkflowRunner:
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSED_THROUGH)
    )
