"""The bare-engine baseline: a workflow running N regular and M local no-op activities, on the same
server and worker settings as the invoices it is compared with. Its own module: the workflow sandbox
re-imports it.

The local ones are spread among the regular ones (one before each regular activity while any are left,
the rest at the end), as an invoice's database steps sit between its renders, emails and syncs."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow


@activity.defn(name="bench_noop")
def bench_noop(_: int) -> int:
    return 0


@workflow.defn(name="BareWorkflow")
class BareWorkflow:
    @workflow.run
    async def run(self, activities: int, local_activities: int = 0) -> int:
        timeout = timedelta(seconds=30)
        local = local_activities
        for i in range(activities):
            if local > 0:
                local -= 1
                await workflow.execute_local_activity("bench_noop", -1, start_to_close_timeout=timeout)
            await workflow.execute_activity("bench_noop", i, start_to_close_timeout=timeout)
        for _ in range(local):
            await workflow.execute_local_activity("bench_noop", -1, start_to_close_timeout=timeout)
        return activities + local_activities
