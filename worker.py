"""The invoiceflow worker: runs InvoiceWorkflow and its activities on one task queue.

Activities are synchronous (PostgreSQL, SMTP and PDF rendering are blocking libraries), so they run on a
thread pool sized to the activity slots; the event loop only drives workflows and polling.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Interceptor, Worker

from activities.accounting import AccountingActivities
from activities.approvals import ApprovalActivities
from activities.email import EmailActivities
from activities.estimates import EstimateActivities
from activities.invoices import InvoiceActivities
from activities.pdf import PdfActivities
from activities.projects import ProjectActivities
from activities.subscriptions import SubscriptionActivities
from invoiceflow.settings import Settings
from invoiceflow.temporal import connect
from workflows.estimate import EstimateWorkflow
from workflows.invoice import InvoiceWorkflow
from workflows.project import ProjectBillingWorkflow
from workflows.subscription import SubscriptionWorkflow

log = logging.getLogger("invoiceflow.worker")

WORKFLOWS = [InvoiceWorkflow, SubscriptionWorkflow, EstimateWorkflow, ProjectBillingWorkflow]


def activities(settings: Settings) -> list[object]:
    invoices = InvoiceActivities(settings)
    pdf = PdfActivities(settings)
    email = EmailActivities(settings)
    subscriptions = SubscriptionActivities(settings)
    approvals = ApprovalActivities(settings)
    estimates = EstimateActivities(settings)
    projects = ProjectActivities(settings)
    accounting = AccountingActivities(settings)
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
        projects.create_project_from_deal,
        accounting.sync_accounting,
    ]


def build_worker(
    client: Client,
    settings: Settings,
    *,
    max_concurrent_activities: int = 16,
    interceptors: Sequence[Interceptor] = (),
    **worker_kwargs: object,
) -> Worker:
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=WORKFLOWS,
        activities=activities(settings),
        activity_executor=ThreadPoolExecutor(max_workers=max_concurrent_activities, thread_name_prefix="activity"),
        max_concurrent_activities=max_concurrent_activities,
        interceptors=interceptors,
        graceful_shutdown_timeout=timedelta(seconds=10),
        **worker_kwargs,  # type: ignore[arg-type]
    )


async def run(settings: Settings, *, interceptors: Sequence[Interceptor] = ()) -> None:
    client = await connect(settings)
    worker = build_worker(client, settings, interceptors=interceptors)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with worker:
        log.info("worker polling task queue %r on %s", settings.task_queue, settings.temporal_address)
        await stop.wait()
    log.info("worker stopped")


if __name__ == "__main__":
    from invoiceflow.settings import get_settings

    logging.basicConfig(level=logging.INFO)
    asyncio.run(run(get_settings()))
