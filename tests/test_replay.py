"""Replay every recorded workflow history (invoice, subscription, estimate, project) against the current code.

A change to workflow code that would break invoices already running (a reordered activity, a new
timer) fails here with a NondeterminismError; guard such changes with ``workflow.patched``."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from workflows.invoice import InvoiceWorkflow
from workflows.payloads import InvoiceResult, InvoiceWorkflowInput

with workflow.unsafe.imports_passed_through():  # this module is sandboxed below (ChangedInvoiceWorkflow)
    from core.payload_converter import DATA_CONVERTER
    from worker import WORKFLOW_RUNNER, WORKFLOWS

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def test_histories_are_recorded() -> None:
    assert len(HISTORIES) >= 4, "record histories with INVOICEFLOW_RECORD_HISTORIES=1 ./scripts/test"


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_replay(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, json.loads(path.read_text()))
    # The worker's own sandbox setup and payload converter: histories recorded with the SDK's converter
    # decode the same.
    replayer = Replayer(workflows=WORKFLOWS, workflow_runner=WORKFLOW_RUNNER, data_converter=DATA_CONVERTER)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"


async def test_all_histories_replay_one_after_another_in_one_worker() -> None:
    """The worker passes the workflow modules through its sandbox (``worker.workflow_runner``), so runs
    share one module: replaying every history twice in one replayer proves no run leaves state behind."""
    histories = [WorkflowHistory.from_json(p.stem, json.loads(p.read_text())) for p in HISTORIES] * 2

    async def each() -> AsyncIterator[WorkflowHistory]:
        for history in histories:
            yield history

    replayer = Replayer(workflows=WORKFLOWS, workflow_runner=WORKFLOW_RUNNER, data_converter=DATA_CONVERTER)
    async with replayer.workflow_replay_iterator(each()) as results:
        outcomes = [r async for r in results]
    assert len(outcomes) == len(histories) and [r.replay_failure for r in outcomes if r.replay_failure] == []


@workflow.defn(name="InvoiceWorkflow")
class ChangedInvoiceWorkflow(InvoiceWorkflow):
    """What a careless edit looks like: a new timer before issuing, without ``workflow.patched``."""

    @workflow.run
    async def run(self, input: InvoiceWorkflowInput) -> InvoiceResult:
        return await super().run(input)

    async def _approval_gate(self) -> None:
        await workflow.sleep(timedelta(minutes=1))


async def test_replay_catches_an_incompatible_change() -> None:
    """The guard can fail: the changed workflow no longer replays the recorded histories."""
    invoice_history = next(p for p in HISTORIES if not p.stem.startswith(("subscription", "estimate")))
    history = WorkflowHistory.from_json(invoice_history.stem, json.loads(invoice_history.read_text()))
    # The worker's own runner: Temporal's default sandbox cannot decode the invoice payloads at all (it
    # re-imports workflows.payloads, whose nested dataclasses then resolve no type hints).
    replayer = Replayer(workflows=[ChangedInvoiceWorkflow], workflow_runner=WORKFLOW_RUNNER)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is not None
    assert "nondetermin" in str(result.replay_failure).lower() or "TMPRL1100" in str(result.replay_failure)
