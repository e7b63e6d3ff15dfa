"""Acceptance: one invoice's whole life on `invoiceflow dev` (real PostgreSQL, Temporal dev server, dev
mailbox, the Xero stand-in), then both metrics endpoints scraped and parsed with prometheus_client's
parser show exactly what happened, and the JSON logs of that life parse line by line, carry the invoice
id, and contain none of the secrets the stack was configured with."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from observability.metrics import SDK_METRICS
from standins.accounting.dev import DEV_TOKEN
from standins.webhooks import stripe_event, stripe_payment_objects
from tests.test_dev_stack import free_port, stop, wait_healthy

SECRETS = {
    "INVOICEFLOW_API_TOKEN": "op-token-5f1e9c2a7b",
    "INVOICEFLOW_SECRET_KEY": "signing-key-8d3b6a1f0e",
    "INVOICEFLOW_STRIPE_WEBHOOK_SECRET": "whsec_accept4nce9x7q",
    "INVOICEFLOW_METRICS_TOKEN": "scrape-token-2c4e6a8b",
    "INVOICEFLOW_SMTP_PASSWORD": "smtp-pass-77aa99bb",
}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def total(parsed: dict, name: str, **labels: str) -> float:
    return sum(
        value
        for (sample, sample_labels), value in parsed.items()
        if sample == name and all(dict(sample_labels).get(k) == v for k, v in labels.items())
    )


@pytest.mark.slow
def test_invoice_life_moves_metrics_and_logs_json_without_secrets(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    ports = {
        name: free_port()
        for name in (
            "api-port",
            "temporal-port",
            "ui-port",
            "smtp-port",
            "mail-ui-port",
            "crm-port",
            "accounting-port",
            "worker-metrics-port",
        )
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("INVOICEFLOW_")}
    env |= SECRETS | {"INVOICEFLOW_LOG_FORMAT": "json"}
    args = [
        sys.executable,
        "-m",
        "invoiceflow.cli",
        "dev",
        "--data-dir",
        str(data_dir),
        "--accounting",
        "xero",
    ]
    for flag, port in ports.items():
        args += [f"--{flag}", str(port)]
    process = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    api = f"http://127.0.0.1:{ports['api-port']}"
    auth = {"Authorization": f"Bearer {SECRETS['INVOICEFLOW_API_TOKEN']}"}
    worker_metrics = f"http://127.0.0.1:{ports['worker-metrics-port']}/metrics"
    try:
        wait_healthy(process, api, timeout=90)
        ready = httpx.get(f"{api}/readyz", timeout=10)
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {"database": "ok", "migrations": "ok", "temporal": "ok"}
        customer = httpx.post(
            f"{api}/customers",
            headers=auth,
            timeout=10,
            json={"name": "Initech", "emails": ["ap@initech.example.com"], "currency": "EUR"},
        ).json()
        invoice = httpx.post(
            f"{api}/invoices",
            headers=auth,
            timeout=10,
            json={
                "customer_id": customer["id"],
                "lines": [{"description": "Audit", "unit_price": "1000.00"}],
            },
        ).json()
        deadline = time.monotonic() + 40
        shown: dict = {}
        while time.monotonic() < deadline:
            shown = httpx.get(f"{api}/invoices/{invoice['id']}", headers=auth, timeout=5).json()
            if shown["status"] == "open" and (shown.get("accounting") or {}).get("status") == "synced":
                break
            time.sleep(0.3)
        assert shown["status"] == "open", shown

        # Paid through Stripe; Stripe redelivers, and the second delivery is a duplicate.
        objects = stripe_payment_objects(invoice["id"], 100000, "eur")
        delivery = stripe_event(
            "invoice.paid", objects["invoice.paid"], SECRETS["INVOICEFLOW_STRIPE_WEBHOOK_SECRET"]
        )
        for _ in range(2):
            answer = httpx.post(
                f"{api}{delivery.path}",
                content=delivery.body,
                timeout=10,
                headers={"Content-Type": "application/json", **delivery.headers},
            )
            assert answer.status_code == 200, answer.text
        forged = httpx.post(
            f"{api}{delivery.path}",
            content=delivery.body,
            timeout=10,
            headers={"Content-Type": "application/json", "Stripe-Signature": "t=1,v1=00"},
        )
        assert forged.status_code == 401
        # A page whose token travels in the query string: it must not reach the access log.
        # (The aging page wants a console session now: an old ?token= link is sent to sign in.)
        page = httpx.get(f"{api}/reports/aging/page?token={SECRETS['INVOICEFLOW_API_TOKEN']}", timeout=10)
        assert page.status_code == 303

        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            shown = httpx.get(f"{api}/invoices/{invoice['id']}", headers=auth, timeout=5).json()
            sync = shown.get("accounting") or {}
            if shown["status"] == "paid" and sync.get("status") == "synced":
                break
            time.sleep(0.3)
        assert shown["status"] == "paid", shown
        mail = httpx.get(f"http://127.0.0.1:{ports['mail-ui-port']}/api/messages", timeout=5).json()
        emails = [m for m in mail if "ap@initech.example.com" in m["to"]]
        time.sleep(1.0)  # the last activity's completion reaches the counters after its side effect

        assert httpx.get(f"{api}/metrics", timeout=5).status_code == 401  # INVOICEFLOW_METRICS_TOKEN
        scraped = httpx.get(
            f"{api}/metrics", headers={"Authorization": f"Bearer {SECRETS['INVOICEFLOW_METRICS_TOKEN']}"}
        )
        api_metrics = samples(scraped.text)
        worker = samples(httpx.get(worker_metrics, timeout=5).text)
    finally:
        output = stop(process)
    assert (
        f"http://127.0.0.1:{ports['worker-metrics-port']}/metrics" in output
    )  # `invoiceflow dev` says where

    # API: what happened, and only that.
    assert (
        total(api_metrics, "invoiceflow_http_requests_total", route="/invoices", method="POST", status="201")
        == 1
    )
    deliveries = "invoiceflow_webhook_deliveries_total"
    assert total(api_metrics, deliveries, provider="stripe", outcome="accepted") == 1
    assert total(api_metrics, deliveries, provider="stripe", outcome="duplicate") == 1
    assert total(api_metrics, deliveries, provider="stripe", outcome="refused") == 1
    assert total(api_metrics, deliveries, provider="stripe") == 3
    # The books talk back too: the Xero stand-in's own signed webhooks reached the API and were accepted.
    assert total(api_metrics, deliveries, provider="xero", outcome="refused") == 0
    assert (
        total(
            api_metrics, "invoiceflow_http_request_duration_seconds_count", route="/invoices", method="POST"
        )
        == 1
    )
    assert ("invoiceflow_inbox_backlog", ()) in api_metrics

    # Worker: 1 issued, N emails (exactly those in the mailbox), 1 payment, the books called.
    assert total(worker, "invoiceflow_invoices_issued_total") == 1
    assert len(emails) >= 2  # the invoice and the payment receipt
    assert total(worker, "invoiceflow_emails_sent_total") == len(emails)
    assert total(worker, "invoiceflow_emails_sent_total", template="invoice") == 1
    assert total(worker, "invoiceflow_payments_recorded_total") == 1
    assert total(worker, "invoiceflow_emails_failed_total") == 0
    assert total(worker, "invoiceflow_accounting_calls_total", provider="xero", outcome="ok") >= 3
    assert total(worker, "invoiceflow_accounting_calls_total", outcome="rate_limited") == 0
    assert total(worker, "invoiceflow_pdf_render_seconds_count") == 1
    assert total(worker, "invoiceflow_outbox_backlog") == 0
    sdk = {name for name, _ in worker if name.startswith("temporal_")}
    assert set(SDK_METRICS) <= sdk, set(SDK_METRICS) - sdk  # what the dashboard and alerts rely on

    # Logs: JSON line by line, the invoice's id on its lines, no configured secret anywhere.
    secrets = [*SECRETS.values(), DEV_TOKEN]
    for name in ("api", "worker"):
        text = (data_dir / "logs" / f"{name}.log").read_text()
        for secret in secrets:
            assert secret not in text, f"{secret!r} in {name}.log"
        lines = [json.loads(line) for line in text.splitlines() if line.strip()]
        assert all("event" in line and "level" in line for line in lines)
        about = [line for line in lines if line.get("invoice_id") == invoice["id"]]
        assert about, f"no line of {name}.log names the invoice"
    api_lines = [
        json.loads(line) for line in (data_dir / "logs" / "api.log").read_text().splitlines() if line
    ]
    # Stripe's three deliveries (the Xero stand-in's own webhooks come back to the API too).
    webhook_lines = [
        line for line in api_lines if line["event"] == "webhook.delivery" and line["provider"] == "stripe"
    ]
    assert [line["outcome"] for line in webhook_lines] == ["accepted", "duplicate", "refused"]
    assert len({line["request_id"] for line in webhook_lines}) == 3
    access = [line["path"] for line in api_lines if line["event"] == "http.request"]
    assert (
        "/reports/aging/page?token=%5BREDACTED%5D" in access
        or "/reports/aging/page?token=[REDACTED]" in access
    )
    worker_lines = [
        json.loads(line) for line in (data_dir / "logs" / "worker.log").read_text().splitlines() if line
    ]
    sent = [
        line
        for line in worker_lines
        if line["event"] == "activity.completed" and line.get("activity_type") == "send_email"
    ]
    assert len(sent) >= len(emails)
    assert all(line["workflow_id"] == f"invoice-{invoice['id']}" and line["attempt"] >= 1 for line in sent)
