"""The worker's runner skips the serialization-context round trips into the sandbox only where nothing
reads them: a client with a payload codec still gets the stock runner, and its codec still learns whose
payload it encodes. Both run a workflow with an activity on the real time-skipping server."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.api.common.v1 import Payload
from temporalio.client import Client
from temporalio.converter import (
    ActivitySerializationContext,
    DataConverter,
    PayloadCodec,
    SerializationContext,
    WithSerializationContext,
)
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from core.workflow_runner import InvoiceflowRunner, needs_context, runner_for

SEEN: list[SerializationContext | None] = []


class RecordingCodec(PayloadCodec, WithSerializationContext):
    """Passes payloads through and notes the context it was given for each encode."""

    def __init__(self, context: SerializationContext | None = None) -> None:
        self.context = context

    def with_context(self, context: SerializationContext) -> RecordingCodec:
        return RecordingCodec(context)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        SEEN.append(self.context)
        return list(payloads)

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return list(payloads)


@activity.defn
def shout(word: str) -> str:
    return word.upper()


@workflow.defn(sandboxed=True)
class ShoutWorkflow:
    @workflow.run
    async def run(self, word: str) -> str:
        return await workflow.execute_activity(shout, word, start_to_close_timeout=timedelta(seconds=10))


async def _run(client: Client) -> str:
    from concurrent.futures import ThreadPoolExecutor

    queue = f"runner-{uuid.uuid4().hex[:6]}"
    async with Worker(
        client,
        task_queue=queue,
        workflows=[ShoutWorkflow],
        activities=[shout],
        activity_executor=ThreadPoolExecutor(2),
        workflow_runner=runner_for(client.data_converter, "tests.test_workflow_runner"),
    ):
        return await client.execute_workflow(
            ShoutWorkflow.run, "paid", id=f"runner-{uuid.uuid4()}", task_queue=queue
        )


def test_the_runner_is_context_free_only_without_a_codec_or_external_storage() -> None:
    plain = DataConverter.default
    with_codec = dataclasses.replace(plain, payload_codec=RecordingCodec())
    assert not needs_context(plain) and needs_context(with_codec)
    assert type(runner_for(plain)) is InvoiceflowRunner
    assert type(runner_for(with_codec)) is SandboxedWorkflowRunner


async def test_a_workflow_runs_through_the_context_free_runner(time_env) -> None:  # type: ignore[no-untyped-def]
    assert await _run(time_env.client) == "PAID"


async def test_a_codec_still_learns_whose_activity_payload_it_encodes(time_env) -> None:  # type: ignore[no-untyped-def]
    config = time_env.client.config()
    config["data_converter"] = dataclasses.replace(DataConverter.default, payload_codec=RecordingCodec())
    SEEN.clear()
    assert await _run(Client(**config)) == "PAID"
    # Every encode had a context: the client's start, the worker's commands (the activity's input, the
    # workflow's result) and the activity's own result. A context-free runner leaves the commands' None.
    assert None not in SEEN and len(SEEN) >= 4, SEEN
    scheduled = [c for c in SEEN if isinstance(c, ActivitySerializationContext)]
    assert scheduled and all(c.activity_type == "shout" for c in scheduled), SEEN
