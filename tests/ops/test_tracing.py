"""One trace from an HTTP request through the workflow to the email and the accounting call.

FastAPI's instrumentation opens the request's span; the Temporal SDK's TracingInterceptor (client and
worker) carries its context in Temporal headers into the workflow and its activities; httpx's
instrumentation adds the call to the books (the Xero stand-in). Spans land in an in-memory exporter."""

from __future__ import annotations

import itertools
import uuid
from collections import defaultdict

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.contrib.opentelemetry import TracingInterceptor

from core.temporal import connect
from observability import tracing
from standins.webhooks import stripe_event, stripe_payment_objects
from tests.accounting.test_invoice_sync_e2e import TOKEN, xero, xero_settings  # noqa: F401 - fixture
from tests.support import api_client, customer_body, eventually
from worker import build_worker

STRIPE_SECRET = "whsec_trace_test_secret"


async def test_one_trace_from_request_through_workflow_to_email_and_books(
    temporal_env,
    make_settings,
    xero,  # noqa: F811
) -> None:  # type: ignore[no-untyped-def]
    exporter = InMemorySpanExporter()
    assert tracing.setup("invoiceflow-test", exporter=exporter)
    state, served = xero
    settings = xero_settings(
        make_settings, temporal_env.client, state, served, stripe_webhook_secret=STRIPE_SECRET
    )
    client = await connect(settings, interceptors=[TracingInterceptor()])
    async with build_worker(client, settings), api_client(settings, client) as api:
        customer = (await api.post("/customers", json=customer_body(currency="EUR"))).json()
        created = await api.post(
            "/invoices",
            json={"customer_id": customer["id"], "lines": [{"description": "Traced", "unit_price": "50.00"}]},
        )
        invoice = created.json()

        async def synced():  # type: ignore[no-untyped-def]
            body = (await api.get(f"/invoices/{invoice['id']}")).json()
            return (
                body
                if body["status"] == "open" and (body["accounting"] or {}).get("status") == "synced"
                else None
            )

        await eventually(synced, what="invoice open and synced")
        objects = stripe_payment_objects(invoice["id"], 5000, "eur", intent=f"pi_{uuid.uuid4().hex[:20]}")
        delivery = stripe_event("invoice.paid", objects["invoice.paid"], STRIPE_SECRET)
        answer = await api.post(
            delivery.path,
            content=delivery.body,
            headers={"Content-Type": "application/json", **delivery.headers},
        )
        assert answer.status_code == 200, answer.text

        async def paid():  # type: ignore[no-untyped-def]
            body = (await api.get(f"/invoices/{invoice['id']}")).json()
            return body if body["status"] == "paid" else None

        await eventually(paid, what="invoice paid")
    tracing.flush()
    spans = exporter.get_finished_spans()
    exporter.shutdown()  # the provider is process-wide: later tests' spans are not kept
    by_trace: dict[int, list] = defaultdict(list)
    for span in spans:
        by_trace[span.context.trace_id].append(span)

    def trace_of(name: str, route: str) -> list:
        [root] = [
            s for s in spans if s.name.startswith(name) and (s.attributes or {}).get("http.route") == route
        ]
        return by_trace[root.context.trace_id]

    issued = trace_of("POST", "/invoices")
    names = {s.name for s in issued}
    assert any(n.startswith("StartWorkflow:InvoiceWorkflow") for n in names), names
    assert "RunWorkflow:InvoiceWorkflow" in names, names
    for activity in ("issue_invoice", "render_invoice_pdf", "send_email", "sync_accounting"):
        assert f"RunActivity:{activity}" in names, names
    urls = [
        str((s.attributes or {}).get("url.full") or (s.attributes or {}).get("http.url") or "")
        for s in issued
    ]
    assert any(url.startswith(served.base_url) for url in urls), urls  # the call to the books, httpx's span

    # A webhook's update: the SDK's interceptor parents the workflow side to the workflow's own trace
    # (the one above) and links it to the caller, so the webhook's trace leads to the payment activity.
    webhook = trace_of("POST", "/webhooks/stripe")
    [update_call] = [s for s in webhook if s.name == "StartWorkflowUpdate:record_payment"]
    [handled] = [s for s in spans if s.name == "HandleUpdate:record_payment"]
    assert [link.context.span_id for link in handled.links] == [update_call.context.span_id]
    applied = [s for s in by_trace[handled.context.trace_id] if s.name == "RunActivity:apply_payment"]
    assert applied and handled.context.trace_id == issued[0].context.trace_id


async def test_one_trace_from_a_webhook_through_the_inbox_to_the_email(
    temporal_env, make_settings, mailbox
) -> None:  # type: ignore[no-untyped-def]
    """A won deal: the webhook request, its wait in the inbox, the dispatcher's signal-with-start, the
    project workflow, the invoice workflow it starts and the invoice email are one trace."""
    from persistence.project_refs import project_id_for_deal
    from standins import webhooks as send_as
    from standins.crm.hubspot import create_hubspot_standin
    from standins.server import serve
    from standins.webhooks import send

    exporter = InMemorySpanExporter()
    assert tracing.setup("invoiceflow-test", exporter=exporter)
    hubspot_app, hubspot = create_hubspot_standin()
    # Every stand-in numbers its objects from the same start, and projects and customers are found by those
    # ids: keep this test's deal, company and contact apart from other tests' in the shared database.
    offset = 500_000_000 + uuid.uuid4().int % 10**8
    hubspot._ids = {kind: itertools.count(next(ids) + offset) for kind, ids in hubspot._ids.items()}
    with serve(hubspot_app) as hs:
        settings = make_settings(
            temporal_env.client,
            public_url="https://billing.example.com",
            hubspot_webhook_secret="hubspot-trace-secret",
            hubspot_api_base_url=hs.base_url,
            hubspot_api_token=hubspot.token,
            default_currency="EUR",
        )
        client = await connect(settings, interceptors=[TracingInterceptor()])
        tag = uuid.uuid4().hex[:8]
        company = hubspot.add_company(f"Traced {tag}", domain="traced.example.com")
        contact = hubspot.add_contact(f"ap-{tag}@traced.example.com", firstname="Ada", lastname="L")
        deal_id = hubspot.add_deal(
            f"Traced deal {tag}",
            currency="EUR",
            contact_ids=[contact],
            company_ids=[company],
            line_items=[{"name": "Workshop", "quantity": "1", "price": "900.00"}],
        )
        async with build_worker(client, settings), api_client(settings, client) as api:
            delivery = send_as.hubspot_deal_won(
                deal_id, "hubspot-trace-secret", public_url=settings.public_url
            )
            assert (await send(api, delivery)).status_code == 200
            project_id = str(project_id_for_deal("hubspot", deal_id))

            async def invoice_sent():  # type: ignore[no-untyped-def]
                project = await api.get(f"/projects/{project_id}")
                if project.status_code != 200 or not project.json()["invoices"]:
                    return None
                invoice = (await api.get(f"/invoices/{project.json()['invoices'][0]['id']}")).json()
                return invoice if invoice["status"] == "open" else None

            invoice = await eventually(invoice_sent, what="the deal's invoice sent")
    tracing.flush()
    spans = exporter.get_finished_spans()
    exporter.shutdown()
    [request] = [
        s for s in spans if (s.attributes or {}).get("http.route") == "/webhooks/hubspot" and s.parent is None
    ]
    trace = [s for s in spans if s.context.trace_id == request.context.trace_id]
    names = {s.name for s in trace}
    assert any(
        n.startswith("SignalWithStartWorkflow:ProjectBillingWorkflow")
        or n.startswith("StartWorkflow:Project")
        for n in names
    ), names
    assert "RunWorkflow:ProjectBillingWorkflow" in names, names
    assert "RunWorkflow:InvoiceWorkflow" in names, names
    emails = [s for s in trace if s.name == "RunActivity:send_email"]
    assert emails, names
    assert invoice["workflow_id"] in {str((s.attributes or {}).get("temporalWorkflowID")) for s in emails}
