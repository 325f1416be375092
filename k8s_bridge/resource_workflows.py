"""Workflows that belong to resources: cancel when the resource is gone, list the living."""

from __future__ import annotations

import logging

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from acmeflow.workflows.resource_ids import UID_MEMO, resource_of

log = logging.getLogger(__name__)
RESOURCE_WORKFLOW_TYPES = ("OrderWorkflow", "CertificateWorkflow", "IssuerAccountWorkflow")


async def cancel_if_owned(client: Client, workflow_id: str, uid: str) -> bool:
    """Cancel the running workflow ``workflow_id`` if it belongs to the resource ``uid``."""
    handle = client.get_workflow_handle(workflow_id)
    try:
        description = await handle.describe()
        if description.status != WorkflowExecutionStatus.RUNNING:
            return False
        if description.raw_description.workflow_extended_info.cancel_requested:
            return False
        if uid and str((await description.memo()).get(UID_MEMO, "")) != uid:
            return False
        await handle.cancel()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    log.info("cancelled %s: its resource was deleted", workflow_id)
    return True


async def running_resource_workflows(client: Client) -> list[tuple[str, str, str, str]]:
    """(workflow id, kind, key, uid) of every running workflow that belongs to a resource."""
    types = ", ".join(f"'{t}'" for t in RESOURCE_WORKFLOW_TYPES)
    query = f"WorkflowType IN ({types}) AND ExecutionStatus = 'Running'"
    found = []
    async for execution in client.list_workflows(query):
        resource = resource_of(execution.id)
        uid = str((await execution.memo()).get(UID_MEMO, ""))
        if resource is not None and uid:
            found.append((execution.id, resource[0], resource[1], uid))
    return found
