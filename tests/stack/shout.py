"""A trivial workflow for the Temporal smoke test, in a module that imports nothing else
(the sandbox re-imports a workflow's module and everything it imports)."""

from __future__ import annotations

import datetime

from temporalio import activity, workflow


@activity.defn
async def shout(text: str) -> str:
    return text.upper()


@workflow.defn
class ShoutWorkflow:
    @workflow.run
    async def run(self, text: str) -> str:
        return await workflow.execute_activity(
            shout, text, start_to_close_timeout=datetime.timedelta(seconds=10)
        )
