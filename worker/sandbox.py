"""The workflow sandbox, passing through only acmeflow's pure value modules.

Workflows import nothing but ``acmeflow.contracts``, ``temporalio`` and each other (an
import contract in ``make lint`` holds this), so no I/O library (acme, requests,
kubernetes, cryptography ...) is ever imported inside the sandbox and none needs passing.
"""

from __future__ import annotations

from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

PASSED_THROUGH = (
    # Stateless values (dataclasses, StrEnums, constants, pure functions) every run shares.
    # The sandbox would re-import them for each workflow run it builds, which buys no
    # isolation as they hold no state, and costs CPU: building a CertificateWorkflow's
    # sandbox took 37 ms of CPU passing nothing through, 10 ms with these.
    "acmeflow.contracts",
    "acmeflow.workflows.activity_steps",
    "acmeflow.workflows.challenge_planning",
    "acmeflow.workflows.renewal_schedule",
    "acmeflow.workflows.resource_ids",
    "acmeflow.workflows.retry_policies",
    "acmeflow.workflows.search_attributes",
    "acmeflow.workflows.solver_selection",
)


def workflow_runner() -> SandboxedWorkflowRunner:
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSED_THROUGH)
    )
