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


def test_payloads_decode_as_the_sdk_decodes_them() -> None:
    """Our JSON conversion (type hints resolved once per dataclass) gives what the SDK's gives, for
    payloads an invoice's life carries (nested dataclasses, datetimes, optionals, dicts), and refuses what
    the SDK refuses. The recorded histories replay through it too (tests/test_replay.py)."""
    from datetime import UTC, datetime

    import pytest

    from core.payload_converter import DATA_CONVERTER
    from workflows.payloads import EmailRequest, InvoiceResult, InvoiceWorkflowInput
    from workflows.payloads.approval import ApprovalLinkSpec
    from workflows.payloads.invoice import ApplyPaymentRequest, PaymentInput

    ours, sdk = DATA_CONVERTER.payload_converter, DataConverter.default.payload_converter
    samples: list[object] = [
        EmailRequest(
            invoice_id=str(uuid.uuid4()),
            kind="approval_request",
            key="invoice:x:approval:r1:s0:pm@firm.example.com",
            to=["pm@firm.example.com"],
            approval=ApprovalLinkSpec(revision=1, step=0, approver="pm@firm.example.com", of_steps=2),
        ),
        ApplyPaymentRequest(
            invoice_id=str(uuid.uuid4()),
            payment=PaymentInput(amount="2856.00", idempotency_key="pay-1", received_at=datetime.now(UTC)),
            past_due=False,
            received_at=datetime(2026, 12, 3, 9, 30, tzinfo=UTC),
        ),
        InvoiceWorkflowInput(invoice_id="i", customer_id="c", currency="EUR", approval_rules=0),
    ]
    for value in samples:
        payloads = sdk.to_payloads([value])
        assert ours.to_payloads([value]) == payloads
        [theirs] = sdk.from_payloads(payloads, [type(value)])
        [mine] = ours.from_payloads(payloads, [type(value)])
        assert mine == theirs == value
    for kind in (InvoiceResult, InvoiceWorkflowInput):  # a required field missing: both refuse
        broken = sdk.to_payloads([{"nothing": 1}])
        with pytest.raises(Exception) as theirs_error:
            sdk.from_payloads(broken, [kind])
        with pytest.raises(Exception) as mine_error:
            ours.from_payloads(broken, [kind])
        assert type(mine_error.value) is type(theirs_error.value)
