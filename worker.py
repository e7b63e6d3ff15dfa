"""The invoiceflow worker: runs InvoiceWorkflow and its activities on one task queue.

Activities are synchronous (PostgreSQL, SMTP and PDF rendering are blocking libraries), so they run on a
thread pool sized to the activity slots; the event loop only drives workflows and polling. PDF renders,
pure-Python CPU work, leave the threads for the worker's render processes (``RenderPool``,
``INVOICEFLOW_RENDER_PROCESSES``), which start on the first render and stop with the worker.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from temporalio.client import Client
from temporalio.worker import Interceptor, Worker

from activities.accounting import AccountingActivities
from activities.approvals import ApprovalActivities
from activities.books import BooksActivities
from activities.credit_notes import CreditNoteActivities
from activities.dunning import DunningActivities
from activities.einvoice import EInvoiceActivities
from activities.email import EmailActivities
from activities.estimates import EstimateActivities
from activities.invoices import InvoiceActivities
from activities.pdf import PdfActivities, RenderPool
from activities.project_emails import ProjectEmailActivities
from activities.projects import ProjectActivities
from activities.subscriptions import SubscriptionActivities
from core.settings import Settings
from core.temporal import connect, with_our_converter
from core.workflow_runner import runner_for, workflow_runner
from documents.einvoice.pool import EInvoicePool
from observability import tracing
from observability.activity_interceptor import ObservabilityInterceptor
from observability.collectors import WorkerCollector
from observability.worker_metrics import MetricsServer, free_loopback_port, sdk_runtime
from workflows.books import BooksInboundWorkflow
from workflows.closed_credit_note import ClosedInvoiceCreditNoteWorkflow
from workflows.estimate import EstimateWorkflow
from workflows.invoice import InvoiceWorkflow
from workflows.project import ProjectBillingWorkflow
from workflows.subscription import SubscriptionWorkflow

log = logging.getLogger("invoiceflow.worker")

WORKFLOWS = [
    InvoiceWorkflow,
    SubscriptionWorkflow,
    EstimateWorkflow,
    ProjectBillingWorkflow,
    ClosedInvoiceCreditNoteWorkflow,
    BooksInboundWorkflow,
]


#: The runner for this worker's own client (no payload codec): replays and tests use it too.
WORKFLOW_RUNNER = workflow_runner("workflows")


def activities(
    settings: Settings, render_pool: RenderPool | None = None, einvoice_pool: EInvoicePool | None = None
) -> list[object]:
    invoices = InvoiceActivities(settings)
    pdf = PdfActivities(settings, render_pool)
    email = EmailActivities(settings)
    subscriptions = SubscriptionActivities(settings)
    approvals = ApprovalActivities(settings)
    estimates = EstimateActivities(settings)
    projects = ProjectActivities(settings)
    project_emails = ProjectEmailActivities(settings)
    accounting = AccountingActivities(settings)
    credit_notes = CreditNoteActivities(settings, render_pool, einvoice_pool)
    dunning = DunningActivities(settings)
    books = BooksActivities(settings)
    einvoice = EInvoiceActivities(settings, render_pool, einvoice_pool)
    return [
        invoices.issue_invoice,
        invoices.set_invoice_status,
        invoices.apply_payment,
        invoices.close_invoice,
        invoices.record_invoice_event,
        pdf.render_invoice_pdf,
        email.send_email,
        subscriptions.create_cycle_invoice,
        subscriptions.record_subscription_event,
        subscriptions.add_subscription_terms,
        approvals.route_approval,
        approvals.revise_draft,
        estimates.convert_estimate,
        estimates.record_estimate_status,
        projects.bill_project_trigger,
        projects.load_tm_schedule,
        projects.create_project_from_deal,
        project_emails.send_project_email,
        accounting.sync_accounting,
        credit_notes.issue_credit_note,
        credit_notes.render_credit_note_pdf,
        credit_notes.apply_refund,
        dunning.place_dunning_hold,
        dunning.release_dunning_holds,
        dunning.apply_late_fee,
        books.poll_books,
        books.apply_books_events,
        einvoice.produce_einvoice,
    ]


class InvoiceflowWorker(Worker):
    """A Temporal ``Worker`` that owns the PDF render processes and stops them once it has stopped
    (whether through ``shutdown``, ``async with`` or a fatal error): no render process outlives it."""

    def __init__(
        self,
        client: Client,
        *,
        render_pool: RenderPool,
        einvoice_pool: EInvoicePool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(client, **kwargs)
        self.render_pool = render_pool
        self.einvoice_pool = einvoice_pool

    async def __aenter__(self) -> InvoiceflowWorker:
        await super().__aenter__()
        return self

    async def run(self) -> None:
        try:
            await super().run()
        finally:
            # After super().run(): every activity has finished, so no render is cut short.
            await asyncio.shield(asyncio.to_thread(self.render_pool.shutdown))
            if self.einvoice_pool is not None:
                await asyncio.shield(asyncio.to_thread(self.einvoice_pool.shutdown))


def build_worker(
    client: Client,
    settings: Settings,
    *,
    max_concurrent_activities: int | None = None,
    max_cached_workflows: int | None = None,
    interceptors: Sequence[Interceptor] = (),
    **worker_kwargs: object,
) -> InvoiceflowWorker:
    client = with_our_converter(client)
    render_pool = RenderPool(settings.render_processes)
    einvoice_pool = EInvoicePool(settings.einvoice_processes)  # the official rules, in a process of its own
    if max_concurrent_activities is None:
        max_concurrent_activities = settings.worker_max_concurrent_activities
    return InvoiceflowWorker(
        client,
        render_pool=render_pool,
        einvoice_pool=einvoice_pool,
        task_queue=settings.task_queue,
        workflows=WORKFLOWS,
        workflow_runner=runner_for(client.data_converter, "workflows"),
        activities=activities(settings, render_pool, einvoice_pool),
        activity_executor=ThreadPoolExecutor(
            max_workers=max_concurrent_activities, thread_name_prefix="activity"
        ),
        max_concurrent_activities=max_concurrent_activities,
        max_cached_workflows=settings.max_cached_workflows
        if max_cached_workflows is None
        else max_cached_workflows,
        max_concurrent_workflow_tasks=settings.workflow_task_slots,
        max_concurrent_workflow_task_polls=settings.worker_workflow_pollers,
        max_concurrent_activity_task_polls=settings.worker_activity_pollers,
        interceptors=[ObservabilityInterceptor(), *interceptors],  # the client's tracing comes on its own
        graceful_shutdown_timeout=timedelta(seconds=10),
        **worker_kwargs,
    )


async def run(settings: Settings, *, interceptors: Sequence[Interceptor] = ()) -> None:
    tracing.setup("invoiceflow-worker", settings.otlp_endpoint)
    metrics_server: MetricsServer | None = None
    sdk_address = None
    if settings.worker_metrics_port is not None:
        sdk_address = f"127.0.0.1:{free_loopback_port()}"
    client = await connect(
        settings, runtime=sdk_runtime(sdk_address), interceptors=tracing.temporal_interceptors()
    )
    worker = build_worker(client, settings, interceptors=interceptors)
    if settings.worker_metrics_port is not None:
        metrics_server = MetricsServer(
            settings.worker_metrics_host,
            settings.worker_metrics_port,
            sdk_url=f"http://{sdk_address}/metrics",
            collectors=(WorkerCollector(settings.require_database_url()),),
        ).start()
        log.info("worker metrics at %s", metrics_server.url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with worker:
            from services.books_workflow import ensure_books_workflow

            books = await ensure_books_workflow(client, settings)  # the books' poller, once connected
            if books:
                log.info("books inbound workflow %s running", books)
            log.info("worker polling task queue %r on %s", settings.task_queue, settings.temporal_address)
            await stop.wait()
    finally:
        if metrics_server is not None:
            metrics_server.stop()
        tracing.flush()
    log.info("worker stopped")


if __name__ == "__main__":
    from core.settings import get_settings
    from observability.logs import configure_from_settings

    configure_from_settings(get_settings())
    asyncio.run(run(get_settings()))
