"""`invoiceflow demo`: fire realistic signed webhooks at a running `invoiceflow dev`.

A newcomer sees the point of the product in a minute: a project is set up through the API, then the
tools where work happens report events (a DocuSign envelope completed, a change order signed through
DocuSign that adds a milestone, a GitHub milestone closed three times over, a Jira issue done, Jira
worklogs on a time & materials project until its threshold bills, a HubSpot deal won that no project
knows, an event nobody can route) and invoices appear in the dev mailbox and in the Temporal UI, once
each.

The dev stack gives every unset webhook secret a random value kept in its data dir
(`invoiceflow.dev_secrets`), which this command reads to sign what it sends, and points the HubSpot
client at `DEMO_CRM_PORT`, where this command serves the HubSpot stand-in (seeded with the won deal)
while it runs.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from invoiceflow.dev_secrets import FILE_NAME, effective_secrets, ensure_secrets, env_name
from standins import webhooks as send_as
from standins.crm.hubspot import create_hubspot_standin
from standins.server import ServedApp

DEMO_CRM_PORT = 8091
DEMO_HUBSPOT_TOKEN = "pat-na1-demo-0000-0000-0000-invoiceflow"


#: A fictional seller for the dev stack (EN 16931 needs the seller's address, VAT id and bank account);
#: set INVOICEFLOW_SELLER_* to your own. The IBAN is the well-known example one, not a real account.
DEV_SELLER = {
    "seller_name": "Your IT Company GmbH",
    "seller_street": "Friedrichstraße 123",
    "seller_city": "Berlin",
    "seller_postal_code": "10117",
    "seller_country": "DE",
    "seller_vat_id": "DE123456789",
    "seller_legal_id": "HRB 123456 B",
    "seller_iban": "DE89370400440532013000",
    "seller_bic": "COBADEFFXXX",
    "seller_endpoint": "9930:DE123456789",
    "seller_contact_name": "Accounts receivable",
    "seller_contact_phone": "+49 30 1234567",
    "seller_contact_email": "billing@invoiceflow.localhost",
}


def dev_environment(
    env: dict[str, str], *, crm_port: int = DEMO_CRM_PORT, data_dir: Path | None = None
) -> dict[str, str]:
    """Dev-stack defaults so webhooks work out of the box; anything the user set wins. Unset webhook
    secrets come from the data dir's random ones (``invoiceflow.dev_secrets``)."""
    if data_dir is not None:
        for provider, secret in ensure_secrets(data_dir).items():
            env.setdefault(env_name(provider), secret)
    env.setdefault("INVOICEFLOW_HUBSPOT_API_BASE_URL", f"http://127.0.0.1:{crm_port}")
    env.setdefault("INVOICEFLOW_HUBSPOT_API_TOKEN", DEMO_HUBSPOT_TOKEN)
    for name, value in DEV_SELLER.items():  # so an e-invoice customer works on the dev stack at once
        env.setdefault(f"INVOICEFLOW_{name.upper()}", value)
    return env


@dataclass
class DemoConfig:
    api_url: str = "http://127.0.0.1:8000"
    api_token: str = "dev-token"
    public_url: str | None = None  # what the API signs HubSpot URLs with; default: api_url
    secret: str = ""  # one secret for every provider (--secret); empty: ``secrets``, per provider
    secrets: dict[str, str] = field(default_factory=dict)
    crm_port: int = DEMO_CRM_PORT
    temporal_ui: str = "http://127.0.0.1:8233"
    mailbox_ui: str = "http://127.0.0.1:8025"
    timeout_s: float = 90.0

    def secret_for(self, provider: str) -> str:
        secret = self.secret or self.secrets.get(provider, "")
        if not secret:
            raise DemoError(
                f"no webhook secret for {provider}: pass --data-dir of the running `invoiceflow dev` "
                f"(it keeps them in {FILE_NAME}) or --secret"
            )
        return secret


@dataclass
class DemoResult:
    project_id: str
    deal_project_id: str
    invoices: list[dict[str, Any]] = field(default_factory=list)
    unmatched: int = 0
    tm_project_id: str = ""
    change_order: dict[str, Any] = field(default_factory=dict)


class DemoError(RuntimeError):
    pass


async def _expect(response: httpx.Response, *codes: int) -> Any:
    if response.status_code not in codes:
        raise DemoError(
            f"{response.request.method} {response.request.url.path} → {response.status_code}: "
            f"{response.text[:500]}"
        )
    return (
        response.json()
        if response.headers.get("content-type", "").startswith("application/json")
        else response.text
    )


async def run_demo(config: DemoConfig, say: Callable[[str], None] = print) -> DemoResult:
    tag = uuid.uuid4().hex[:6]
    app, hubspot = create_hubspot_standin(DEMO_HUBSPOT_TOKEN)
    company = hubspot.add_company(f"Initech {tag}", domain="initech.example.com")
    contact = hubspot.add_contact(f"ap-{tag}@initech.example.com", firstname="Peter", lastname="Gibbons")
    deal_id = hubspot.add_deal(
        f"Initech cloud migration {tag}",
        currency="USD",
        contact_ids=[contact],
        company_ids=[company],
        line_items=[
            {"name": "Migration workshop", "quantity": "2", "price": "1800.00"},
            {"name": "Runbook and hand-over", "quantity": "1", "price": "950.00"},
        ],
    )
    crm = ServedApp(app, port=config.crm_port).start()
    headers = {"Authorization": f"Bearer {config.api_token}"}
    try:
        async with httpx.AsyncClient(base_url=config.api_url, headers=headers, timeout=30) as api:
            await _expect(await api.get("/healthz"), 200)
            customer = await _expect(
                await api.post(
                    "/customers",
                    json={
                        "name": f"Globex Corporation {tag}",
                        "emails": [f"ap-{tag}@globex.example.com"],
                        "currency": "USD",
                        "timezone": "America/New_York",
                        "payment_terms": "net_30",
                        "owner_email": "owner@yourfirm.example.com",
                    },
                ),
                201,
            )
            envelope = str(uuid.uuid4())
            github_ref, jira_ref = f"globex/portal-{tag}", f"PORT-{uuid.uuid4().int % 10000}"
            project = await _expect(
                await api.post(
                    "/projects",
                    json={
                        "customer_id": customer["id"],
                        "name": f"Portal rebuild {tag}",
                        "currency": "USD",
                        "category": "fixed-scope",
                        "deposit": {"percent": "30"},
                        "external_refs": {"docusign": envelope},
                        "milestones": [
                            {
                                "key": "design",
                                "name": "Design sign-off",
                                "amount": "4000.00",
                                "external_refs": {"github": f"{github_ref}#3"},
                            },
                            {
                                "key": "launch",
                                "name": "Launch",
                                "amount": "6000.00",
                                "external_refs": {"jira": jira_ref},
                            },
                        ],
                    },
                ),
                201,
            )
            say(
                f"project {project['name']}: deposit 30 % on signature, milestones on GitHub {github_ref}#3 "
                f"and Jira {jira_ref}"
            )

            issue_id = str(10000 + uuid.uuid4().int % 10**6)
            tm_project = await _expect(
                await api.post(
                    "/projects",
                    json={
                        "customer_id": customer["id"],
                        "name": f"Platform support {tag}",
                        "currency": "USD",
                        "time_and_materials": {"rate": "150.00", "threshold_hours": "16"},
                        "external_refs": {"jira_issue_id": issue_id},
                    },
                ),
                201,
            )
            say(
                f"project {tm_project['name']}: time & materials at 150.00/h, billed at 16 h "
                f"(worklogs on Jira issue {issue_id})"
            )

            secret = config.secret_for

            async def fire(label: str, delivery: send_as.Delivery) -> None:
                response = await send_as.send(api, delivery)
                await _expect(response, 200, 202)
                say(f"  {delivery.provider:<9} {label}: HTTP {response.status_code}")

            async def until(what: str, done: Callable[[], Any]) -> Any:
                deadline = asyncio.get_running_loop().time() + config.timeout_s
                while not (found := await done()):
                    if asyncio.get_running_loop().time() > deadline:
                        raise DemoError(
                            f"{what} did not happen in time; is the worker running? (see the logs)"
                        )
                    await asyncio.sleep(0.3)
                return found

            async def mine() -> dict[str, Any]:
                return await _expect(await api.get(f"/projects/{project['id']}"), 200)  # type: ignore[no-any-return]

            await fire(
                "DocuSign envelope completed (the contract is signed)",
                send_as.docusign_envelope_completed(envelope, secret("docusign")),
            )
            await until("the deposit invoice", lambda: _has_invoices(mine, 1))
            order_envelope = str(uuid.uuid4())
            order = await _expect(
                await api.post(
                    f"/projects/{project['id']}/change-orders",
                    json={
                        "reason": "The client asked for a mobile app",
                        "reference": f"CR-{tag}",
                        "add": [{"key": "mobile", "name": "Mobile app", "amount": "2000.00"}],
                        "signature": {"system": "docusign", "envelope_id": order_envelope},
                    },
                ),
                201,
            )
            say(f"change order {order['number']}: adds Mobile app 2,000.00, {order['status']}")
            await fire(
                "DocuSign envelope completed (the change order is signed)",
                send_as.docusign_envelope_completed(order_envelope, secret("docusign")),
            )

            async def applied() -> dict[str, Any] | None:
                orders = (await mine())["change_orders"]
                return next((o for o in orders if o["status"] == "applied"), None)

            order = await until("the change order", applied)
            say(f"  contract {order['contract_before']} → {order['contract_after']}")
            worklog = f"{uuid.uuid4().int % 10**8}"
            deliveries = [
                (
                    "GitHub milestone closed",
                    send_as.github_milestone_closed(github_ref, 3, secret("github"), delivery=f"gh-{tag}"),
                ),
                (
                    "the same GitHub delivery again (a redelivery)",
                    send_as.github_milestone_closed(github_ref, 3, secret("github"), delivery=f"gh-{tag}"),
                ),
                (
                    "GitHub again, as a new delivery of the same milestone",
                    send_as.github_milestone_closed(github_ref, 3, secret("github")),
                ),
                ("Jira issue moved to Done", send_as.jira_issue_done(jira_ref, secret("jira"))),
                (
                    "Jira worklog 8h (Ada)",
                    send_as.jira_worklog(
                        f"{worklog}1", issue_id, 8 * 3600, secret("jira"), identifier=f"wl-{tag}-1"
                    ),
                ),
                (
                    "the same Jira worklog again (a retry)",
                    send_as.jira_worklog(
                        f"{worklog}1", issue_id, 8 * 3600, secret("jira"), identifier=f"wl-{tag}-1"
                    ),
                ),
                (
                    "Jira worklog 8h (Grace): 16 h, the threshold",
                    send_as.jira_worklog(
                        f"{worklog}2", issue_id, 8 * 3600, secret("jira"), author="Grace Hopper"
                    ),
                ),
                (
                    "HubSpot deal won, no project knows it",
                    send_as.hubspot_deal_won(
                        deal_id, secret("hubspot"), public_url=config.public_url or config.api_url
                    ),
                ),
                (
                    "a generic event for something no project knows",
                    send_as.generic_event(
                        f"demo-{tag}",
                        "milestone.completed",
                        secret("generic"),
                        ref={"system": "generic", "id": f"unknown-{tag}"},
                    ),
                ),
            ]
            for label, delivery in deliveries:
                await fire(label, delivery)

            result = DemoResult(project_id=project["id"], deal_project_id="", tm_project_id=tm_project["id"])

            async def everything() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]] | None:
                main = await mine()
                tm = await _expect(await api.get(f"/projects/{tm_project['id']}"), 200)
                projects = await _expect(await api.get("/projects", params={"limit": 500}), 200)
                deal = next((p for p in projects if p["external_refs"].get("hubspot_deal") == deal_id), None)
                counts = [(main, 3), (tm, 1), (deal, 1)]
                if all(p and len(p["invoices"]) == n and _issued(p) for p, n in counts):
                    return main, tm, deal  # type: ignore[return-value]
                return None

            main, tm, deal_project = await until("the invoices", everything)
            result.deal_project_id, result.change_order = deal_project["id"], order
            result.invoices = main["invoices"] + tm["invoices"] + deal_project["invoices"]
            result.unmatched = len(await _expect(await api.get("/webhooks/unmatched"), 200))
    finally:
        crm.stop()

    say("")
    say("invoices created, once each:")
    for invoice in result.invoices:
        say(f"  {invoice['number'] or '(draft)':<18} {invoice['total']:>10} USD  {invoice['status']}")
    query = quote('WorkflowType="ProjectBillingWorkflow"')
    say(f"events kept for an operator: {result.unmatched} (GET /webhooks/unmatched)")
    say(f"mailbox:     {config.mailbox_ui}")
    say(f"Temporal UI: {config.temporal_ui}/namespaces/default/workflows?query={query}")
    return result


async def _has_invoices(load: Callable[[], Any], count: int) -> bool:
    project = await load()
    return len(project["invoices"]) >= count and _issued(project)


def _issued(project: dict[str, Any]) -> bool:
    return all(i["status"] != "draft" for i in project["invoices"])


def config_from_env(
    api_url: str, api_token: str | None, secret: str | None, data_dir: Path | None = None
) -> DemoConfig:
    """The demo's settings: the token from the environment, the webhook secrets from ``--secret``, else
    the environment's INVOICEFLOW_*_WEBHOOK_SECRET, else the dev data dir's file."""
    return DemoConfig(
        api_url=api_url,
        api_token=api_token or os.environ.get("INVOICEFLOW_API_TOKEN", "dev-token"),
        public_url=os.environ.get("INVOICEFLOW_PUBLIC_URL"),
        secret=secret or "",
        secrets=effective_secrets(data_dir or Path(".invoiceflow"), dict(os.environ)),
    )
