"""A real worker process that SIGKILLs itself once, right after the first ``send_email`` activity has
done its work and before the completion reaches Temporal: the crash window an outbox must cover.

Run as ``python -m tests.crashing_worker MARKER_FILE`` with INVOICEFLOW_* in the environment.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

import worker
from core.settings import Settings


class _DieAfterEmail(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, marker: Path) -> None:
        super().__init__(next)
        self._marker = marker

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        result = await self.next.execute_activity(input)
        if activity.info().activity_type == "send_email" and not self._marker.exists():
            self._marker.write_text("crashed")
            os.kill(os.getpid(), signal.SIGKILL)
        return result


class DieAfterFirstEmail(Interceptor):
    def __init__(self, marker: Path) -> None:
        self._marker = marker

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _DieAfterEmail(next, self._marker)


if __name__ == "__main__":
    marker = Path(sys.argv[1]) if len(sys.argv) > 1 else None
    interceptors = [DieAfterFirstEmail(marker)] if marker else []
    asyncio.run(worker.run(Settings(), interceptors=interceptors))
