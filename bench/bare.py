"""The bare-engine baseline: a workflow running N no-op activities, on the same server and worker
settings as the invoices it is compared with. Its own module: the workflow sandbox re-imports it."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow


@activity.defn(name="bench_noop")
def bench_noop(_: int) -> int:
    return 0


@workflow.defn(name="BareWorkflow")
class BareWorkflow:
    @workflow.run
    async def run(self, activities: int) -> int:
        for i in range(activities):
            await workflow.execute_activity("bench_noop", i, start_to_close_timeout=timedelta(seconds=30))
        return activities
