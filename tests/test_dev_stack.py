"""`invoiceflow dev` as a user runs it: healthy within 60 s, the Temporal UI and dev mailbox answer, an
invoice goes out, Ctrl-C leaves no process behind, and a second start finds the same data."""

from __future__ import annotations

import asyncio
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psutil
import pytest
from temporalio.client import Client, WorkflowExecutionStatus

from billing.aging import BUCKETS
from invoiceflow.dev_secrets import read_secrets
from standins.webhooks import stripe_event, stripe_payment_objects

TOKEN = "stack-token"
ADMIN_EMAIL, ADMIN_PASSWORD = "admin@stack.example.com", "stack admin password"


def free_port() -> int:
    """A free port below the kernel's ephemeral range. The stack is given its ports up front and binds
    them seconds later; a port the kernel handed out for ``bind(0)`` could meanwhile go to anything else
    asking for one (the Temporal dev server picks its internal ports that way, as do the other test
    processes), and the child then dies with "address already in use"."""
    ephemeral = Path("/proc/sys/net/ipv4/ip_local_port_range")
    low = int(ephemeral.read_text().split()[0]) if ephemeral.exists() else 32768
    rng = random.SystemRandom()
    while True:
        port = rng.randrange(max(1024, low - 12000), low)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


def start(data_dir: Path, ports: dict[str, int], extra: list[str] | None = None) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INVOICEFLOW_")}
    env["INVOICEFLOW_API_TOKEN"] = TOKEN
    env["INVOICEFLOW_ADMIN_EMAIL"] = ADMIN_EMAIL
    env["INVOICEFLOW_ADMIN_PASSWORD"] = ADMIN_PASSWORD
    args = [sys.executable, "-m", "invoiceflow.cli", "dev", "--data-dir", str(data_dir)]
    for flag, port in ports.items():
        args += [f"--{flag}", str(port)]
    args += extra or []
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def wait_healthy(process: subprocess.Popen[bytes], api: str, timeout: float = 60) -> float:
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
        try:
            if httpx.get(f"{api}/healthz", timeout=1).status_code == 200:
                return time.monotonic() - began
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError("invoiceflow dev did not become healthy within 60 s")


def stop(process: subprocess.Popen[bytes]) -> str:
    if process.poll() is not None:  # it died on its own: show why instead of failing on a missing pid
        out = process.stdout.read().decode() if process.stdout else ""
        raise AssertionError(f"invoiceflow dev exited early with {process.returncode}:\n{out}")
    tree = [process.pid] + [c.pid for c in psutil.Process(process.pid).children(recursive=True)]
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=60)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(
        psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in tree
    ):
        time.sleep(0.2)
    alive = [p for p in tree if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    assert alive == [], f"processes left behind: {alive}"
    return out.decode()


def postgres_running(data_dir: Path, settle_s: float = 10.0) -> bool:
    """Whether a postgres of this data dir is still alive once its exit has had time to settle."""
    deadline = time.monotonic() + settle_s
    while True:
        alive = any(
            p.info["name"] == "postgres"
            and str(data_dir) in " ".join(p.info["cmdline"] or [])
            and p.info["status"] != psutil.STATUS_ZOMBIE
            for p in psutil.process_iter(attrs=["name", "cmdline", "status"])
        )
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.2)


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def paid_by_stripe(
    api: str, auth: dict[str, str], ports: dict[str, int], invoice: dict, message_id: str, secret: str
) -> None:
    email = httpx.get(f"http://127.0.0.1:{ports['mail-ui-port']}/api/messages/{message_id}", timeout=5).json()
    [link] = set(re.findall(r"https?://[^\s\"<>]+/i/[A-Za-z0-9._\-]+", email["text"] or ""))
    link = f"{api}{urlsplit(link).path}"  # the emailed page, on the address this test reaches the API by
    objects = stripe_payment_objects(invoice["id"], 285600, "eur")
    delivery = stripe_event("invoice.paid", objects["invoice.paid"], secret)
    for _ in range(2):  # Stripe redelivers; one payment either way
        answer = httpx.post(
            f"{api}{delivery.path}",
            content=delivery.body,
            timeout=60,  # the first one waits for the restarted worker
            headers={"Content-Type": "application/json", **delivery.headers},
        )
        assert answer.status_code == 200, answer.text
    deadline = time.monotonic() + 30
    shown: dict = {}
    while time.monotonic() < deadline:
        shown = httpx.get(f"{api}/invoices/{invoice['id']}", headers=auth, timeout=5).json()
        if shown["status"] == "paid":
            break
        time.sleep(0.3)
    assert shown["status"] == "paid" and shown["amount_due"] == "0.00" and len(shown["payments"]) == 1, shown

    async def workflow_status() -> WorkflowExecutionStatus | None:
        client = await Client.connect(f"127.0.0.1:{ports['temporal-port']}")
        handle = client.get_workflow_handle(shown["workflow_id"])
        await handle.result()  # no reminder can come from a completed workflow
        return (await handle.describe()).status

    assert asyncio.run(asyncio.wait_for(workflow_status(), 30)) == WorkflowExecutionStatus.COMPLETED

    if CHROMIUM is None:
        if os.environ.get("CI") == "true":
            raise AssertionError("CI must have Chromium")
        return
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 390, "height": 844})
        page.goto(link)
        assert page.get_attribute("[data-status]", "data-status") == "paid"
        assert page.text_content("[data-amount-due]") == "0.00 EUR"
        page.goto(f"{api}/reports/aging/page")  # no session yet: the console's login form, then back
        page.fill("#email", ADMIN_EMAIL)
        page.fill("#password", ADMIN_PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("heading", name="Receivables aging").wait_for()
        assert page.locator('figure.chart[data-currency="EUR"] svg rect').count() == len(BUCKETS)
        browser.close()
    timeline = httpx.get(f"{api}/invoices/{invoice['id']}", headers=auth, timeout=5).json()["timeline"]
    assert any(e["kind"] == "viewed" and "Chrome" in e["data"]["user_agent"] for e in timeline), timeline


@pytest.mark.slow
def test_dev_stack_runs_and_stops_cleanly(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    ports = {
        name: free_port()
        for name in ("api-port", "temporal-port", "ui-port", "smtp-port", "mail-ui-port", "crm-port")
    }
    api = f"http://127.0.0.1:{ports['api-port']}"
    auth = {"Authorization": f"Bearer {TOKEN}"}

    process = start(data_dir, ports)
    try:
        assert wait_healthy(process, api) < 60
        assert httpx.get(f"http://127.0.0.1:{ports['ui-port']}/", timeout=5).status_code == 200
        assert httpx.get(f"{api}/docs", timeout=5).status_code == 200
        customer = httpx.post(
            f"{api}/customers",
            headers=auth,
            timeout=10,
            json={
                "name": "Initech",
                "emails": ["ap@initech.example.com"],
                "currency": "EUR",
                "timezone": "Europe/Berlin",
            },
        ).json()
        invoice = httpx.post(
            f"{api}/invoices",
            headers=auth,
            timeout=10,
            json={
                "customer_id": customer["id"],
                "lines": [{"description": "Managed services", "unit_price": "2400.00", "tax_rate": "19"}],
            },
        ).json()
        mail_api = f"http://127.0.0.1:{ports['mail-ui-port']}/api/messages"
        deadline = time.monotonic() + 30
        messages: list[dict] = []
        while time.monotonic() < deadline and not messages:
            messages = [
                m for m in httpx.get(mail_api, timeout=5).json() if "ap@initech.example.com" in m["to"]
            ]
            time.sleep(0.3)
        assert len(messages) == 1 and messages[0]["attachments"][0]["content_type"] == "application/pdf"
        shown = httpx.get(f"{api}/invoices/{invoice['id']}", headers=auth, timeout=5).json()
        assert shown["status"] == "open" and shown["total"] == "2856.00"

        # A monthly retainer that started in the past, "latest only": one invoice now, for the latest
        # period, carrying the approved expense; the next dates are shown.
        expense = httpx.post(
            f"{api}/customers/{customer['id']}/expenses",
            headers=auth,
            timeout=10,
            json={"description": "Server rack rail kit", "amount": "120.00", "incurred_on": "2026-11-02"},
        ).json()
        assert expense["status"] == "approved"
        began = (date.today() - timedelta(days=95)).isoformat()
        sub = httpx.post(
            f"{api}/subscriptions",
            headers=auth,
            timeout=10,
            json={
                "customer_id": customer["id"],
                "lines": [{"description": "Managed services", "unit_price": "2400.00"}],
                "interval": "month",
                "start_date": began,
                "catch_up": "latest",
            },
        ).json()
        assert (
            sub["next_invoice_dates"]
            and date.fromisoformat(sub["next_invoice_dates"][0]["date"]) > date.today()
        )
        deadline = time.monotonic() + 30
        detail: dict = {}
        while time.monotonic() < deadline:
            detail = httpx.get(f"{api}/subscriptions/{sub['id']}", headers=auth, timeout=5).json()
            if detail["invoices"] and detail["invoices"][0]["status"] == "open":
                break
            time.sleep(0.3)
        [cycle_invoice] = detail["invoices"]
        assert (
            date.fromisoformat(cycle_invoice["period_date"]) <= date.today()
            and cycle_invoice["total"] == "2520.00"
        )
        assert [e["kind"] for e in detail["history"]].count("cycle.skipped") == 3
        items = httpx.get(f"{api}/customers/{customer['id']}/billable-items", headers=auth, timeout=5).json()
        assert [i["invoice_id"] for i in items] == [cycle_invoice["invoice_id"]]

        # `invoiceflow demo`: signed webhooks from DocuSign (the contract, then a change order adding a
        # milestone), GitHub (three deliveries), Jira (an issue done; worklogs on a T&M project up to its
        # threshold, one retried) and HubSpot (a won deal read from the CRM stand-in) → five invoices, each
        # once, the milestones recouping the deposit over the amended contract; one event kept unmatched.
        # The inbox's dispatcher is a supervised child of its own: killed now, the stack restarts it and
        # the restarted one hands the demo's events over.
        [dispatcher] = [
            c
            for c in psutil.Process(process.pid).children(recursive=True)
            if c.cmdline()[-1:] == ["dispatcher"]
        ]
        dispatcher.kill()
        env = {k: v for k, v in os.environ.items() if not k.startswith("INVOICEFLOW_")}
        demo = subprocess.run(
            [
                sys.executable,
                "-m",
                "invoiceflow.cli",
                "demo",
                "--api-url",
                api,
                "--token",
                TOKEN,
                "--crm-port",
                str(ports["crm-port"]),
                "--data-dir",
                str(data_dir),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=150,
        )
        assert demo.returncode == 0, demo.stdout + demo.stderr
        invoice_lines = [line for line in demo.stdout.splitlines() if line.strip().startswith("INV-")]
        assert len(invoice_lines) == 5, demo.stdout
        totals = [line.split()[1] for line in invoice_lines]
        assert totals == ["3000.00", "3000.00", "4500.00", "2400.00", "4550.00"], demo.stdout
        assert "contract 10000.00 → 12000.00" in demo.stdout  # the change order, signed and applied
        assert "events kept for an operator: 1" in demo.stdout

        # On `invoiceflow dev`: a signed Stripe `invoice.paid` for the open invoice makes it paid and
        # ends its reminders (the workflow completes); the hosted page from the email, opened in Chromium,
        # shows it paid and the view lands on the timeline; the aging page draws its chart.
        # The dev stack's webhook secrets are random, per data dir, in a file only its owner reads.
        secrets = read_secrets(data_dir)
        assert len(set(secrets.values())) == len(secrets) and "dev-webhook-secret" not in secrets.values()
        assert (data_dir / "webhook-secrets.env").stat().st_mode & 0o077 == 0
        # A worker killed outright is restarted by the stack (the payment below needs it).
        [worker] = [
            c for c in psutil.Process(process.pid).children(recursive=True) if c.cmdline()[-1:] == ["worker"]
        ]
        worker.kill()
        paid_by_stripe(api, auth, ports, invoice, messages[0]["id"], secrets["stripe"])
    finally:
        output = stop(process)
    assert "invoiceflow is running" in output
    assert f"Console        {api}/app  (sign in as {ADMIN_EMAIL} with INVOICEFLOW_ADMIN_PASSWORD)" in output
    assert ADMIN_PASSWORD not in output
    assert "worker exited with code -9; restarting it in 1 s" in output and "worker restarted" in output, (
        output
    )
    assert "dispatcher exited with code -9; restarting it in 1 s" in output, output
    assert "dispatcher restarted" in output, output
    assert not postgres_running(data_dir)

    # Second start: same data dir, same data; this time syncing to the Xero stand-in (`--accounting xero`):
    # an invoice issued through the API appears there once with every line, and its payment once.
    xero_port = free_port()
    process = start(data_dir, ports, extra=["--accounting", "xero", "--accounting-port", str(xero_port)])
    try:
        wait_healthy(process, api)
        again = httpx.get(f"{api}/customers/{customer['id']}", headers=auth, timeout=5)
        assert again.status_code == 200 and again.json()["name"] == "Initech"
        synced = httpx.post(
            f"{api}/invoices",
            headers=auth,
            timeout=10,
            json={
                "customer_id": customer["id"],
                "lines": [
                    {"description": "Firewall audit", "quantity": "2", "unit_price": "800.00"},
                    {"description": "Report", "quantity": "1", "unit_price": "250.00", "tax_rate": "19"},
                ],
            },
        ).json()
        xero = f"http://127.0.0.1:{xero_port}/api.xro/2.0"
        xero_auth = {"Authorization": "Bearer dev-accounting-token", "xero-tenant-id": "dev-xero-tenant"}

        def in_xero() -> list[dict]:
            body = httpx.get(f"{xero}/Invoices", headers=xero_auth, timeout=5).json()
            return [
                i
                for i in body.get("Invoices", [])
                if i.get("Reference") == synced["id"]
                or i.get("InvoiceNumber")
                == httpx.get(f"{api}/invoices/{synced['id']}", headers=auth, timeout=5).json()["number"]
            ]

        deadline = time.monotonic() + 40
        found: list[dict] = []
        while time.monotonic() < deadline and not found:
            found = in_xero()
            time.sleep(0.5)
        assert len(found) == 1, found
        assert [line["Description"] for line in found[0]["LineItems"]] == ["Firewall audit", "Report"]
        paid = httpx.post(
            f"{api}/invoices/{synced['id']}/payments",
            headers=auth | {"Idempotency-Key": "DEV-WIRE-1"},
            timeout=10,
            json={"amount": "1897.50", "reference": "DEV-WIRE-1"},
        )
        assert paid.status_code == 201, paid.text
        deadline = time.monotonic() + 40
        payments: list[dict] = []
        while time.monotonic() < deadline and not payments:
            body = httpx.get(f"{xero}/Payments", headers=xero_auth, timeout=5).json()
            payments = [
                p for p in body.get("Payments", []) if p["Invoice"]["InvoiceID"] == found[0]["InvoiceID"]
            ]
            time.sleep(0.5)
        assert len(payments) == 1 and Decimal(str(payments[0]["Amount"])) == Decimal("1897.50")
        detail = httpx.get(f"{api}/invoices/{synced['id']}", headers=auth, timeout=5).json()
        assert detail["accounting"]["provider"] == "xero" and detail["accounting"]["status"] == "synced"

        # The books talk back: an accountant enters the next invoice's payment in Xero; the stand-in's
        # signed webhook reaches the API the dev stack wired it to, and the invoice is paid, once.
        second = httpx.post(
            f"{api}/invoices",
            headers=auth,
            timeout=10,
            json={
                "customer_id": customer["id"],
                "lines": [{"description": "Patch day", "unit_price": "300.00"}],
            },
        ).json()
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            state = httpx.get(f"{api}/invoices/{second['id']}", headers=auth, timeout=5).json()
            if (state.get("accounting") or {}).get("status") == "synced":
                break
            time.sleep(0.5)
        entered = httpx.put(
            f"{xero}/Payments",
            headers=xero_auth,
            timeout=10,
            json={
                "Payments": [
                    {
                        "Invoice": {"InvoiceID": state["accounting"]["external_id"]},
                        "Account": {"Code": "090"},
                        "Date": time.strftime("%Y-%m-%d"),
                        "Amount": "300.00",
                        "Reference": "BANK-LINE-9",
                    }
                ]
            },
        )
        assert entered.status_code == 200, entered.text
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and state["status"] != "paid":
            time.sleep(0.3)
            state = httpx.get(f"{api}/invoices/{second['id']}", headers=auth, timeout=5).json()
        assert state["status"] == "paid" and [p["reference"] for p in state["payments"]] == [
            "xero BANK-LINE-9"
        ]
    finally:
        stop(process)
    assert not postgres_running(data_dir)
