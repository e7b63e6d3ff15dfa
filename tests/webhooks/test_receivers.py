"""Webhook receivers end to end: real HTTP bodies signed as each provider signs them, the real Temporal dev
server, PostgreSQL and the project workflow. For every provider: a correct delivery bills what it should,
five deliveries bill once, a wrong signature and a stale timestamp are 401, a malformed body is 422."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio

from api.webhooks import signatures
from standins import webhooks as send_as
from standins.asana import create_asana_standin
from standins.server import serve
from standins.webhooks import Delivery, send
from tests.support import api_client, customer_body, eventually, record_history
from worker import build_worker

SECRETS = {
    "hubspot_webhook_secret": "hubspot-app-secret",
    "pipedrive_webhook_secret": "pipedrive-pass",
    "jira_webhook_secret": "jira-secret",
    "linear_webhook_secret": "lin_wh_secret",
    "github_webhook_secret": "gh-secret",
    "asana_webhook_secret": "asana-url-token",
    "docusign_webhook_secret": "docusign-hmac-key",
    "dropbox_sign_webhook_secret": "dropbox-api-key",
    "pandadoc_webhook_secret": "pandadoc-key",
    "generic_webhook_secret": "generic-secret",
}
PUBLIC_URL = "https://billing.example.com"
ASANA_HOOK = "asana-hook-secret-from-handshake"


@dataclass
class Stack:
    api: Any
    settings: Any
    client: Any


@pytest_asyncio.fixture
async def stack(temporal_env, make_settings) -> AsyncIterator[Stack]:  # type: ignore[no-untyped-def]
    client = temporal_env.client
    settings = make_settings(client, public_url=PUBLIC_URL, **SECRETS)
    async with build_worker(client, settings), api_client(settings, client) as api:
        yield Stack(api, settings, client)


def uid() -> str:
    return uuid.uuid4().hex[:10]


async def new_project(
    api,
    *,
    deposit: dict[str, str] | None = None,
    refs: dict[str, str] | None = None,  # type: ignore[no-untyped-def]
    milestones: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    customer = (await api.post("/customers", json=customer_body())).json()
    body: dict[str, Any] = {
        "customer_id": customer["id"],
        "name": f"Portal rebuild {uid()}",
        "currency": "USD",
        "category": "fixed-scope",
        "milestones": milestones or [{"key": "m1", "name": "Design sign-off", "amount": "4000.00"}],
        "external_refs": refs or {},
    }
    if deposit:
        body["deposit"] = deposit
    response = await api.post("/projects", json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def settled(api, project_id: str, *, invoices: int) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    async def probe():  # type: ignore[no-untyped-def]
        body = (await api.get(f"/projects/{project_id}")).json()
        return body if len(body["invoices"]) >= invoices else None

    return await eventually(probe, what=f"{invoices} invoice(s) on project {project_id}")


# Each case: how to link a project to the provider's object, a correct delivery for it, and a way to sign
# any body as that provider would (for the malformed-body check). `stale` builds a correctly signed
# delivery that is too old, where the scheme has a timestamp.


@dataclass
class Case:
    provider: str
    link: Callable[[str], dict[str, Any]]  # ref → new_project kwargs
    deliver: Callable[[str], Delivery]  # ref → a correct delivery
    sign: Callable[[bytes], Delivery]
    malformed: Callable[[], bytes]  # built at test time: some carry a timestamp that must be fresh
    stale: Callable[[str], Delivery] | None
    billed: str  # "deposit" or "milestone"


def _milestone(system: str) -> Callable[[str], dict[str, Any]]:
    return lambda ref: {
        "milestones": [
            {"key": "m1", "name": "Design sign-off", "amount": "4000.00", "external_refs": {system: ref}}
        ]
    }


def _signed_json(
    provider: str, path: str, headers: Callable[[bytes], dict[str, str]]
) -> Callable[[bytes], Delivery]:
    return lambda body: Delivery(provider, path, body, headers(body))


OLD = time.time() - 10 * 86400

CASES = [
    Case(
        "jira",
        _milestone("jira"),
        lambda ref: send_as.jira_issue_done(ref, SECRETS["jira_webhook_secret"]),
        _signed_json(
            "jira", "/webhooks/jira", lambda b: signatures.sign_jira(b, SECRETS["jira_webhook_secret"])
        ),
        lambda: json.dumps({"webhookEvent": "jira:issue_updated", "issue": {"fields": {}}}).encode(),
        lambda ref: send_as.jira_issue_done(ref, SECRETS["jira_webhook_secret"], now=OLD),
        "milestone",
    ),
    Case(
        "linear",
        _milestone("linear"),
        lambda ref: send_as.linear_issue_completed(ref, SECRETS["linear_webhook_secret"]),
        _signed_json(
            "linear",
            "/webhooks/linear",
            lambda b: signatures.sign_linear(b, SECRETS["linear_webhook_secret"]),
        ),
        lambda: json.dumps(
            {"webhookTimestamp": int(time.time() * 1000), "action": "update", "type": "Issue", "data": "x"}
        ).encode(),
        lambda ref: send_as.linear_issue_completed(
            ref, SECRETS["linear_webhook_secret"], now=time.time() - 120
        ),
        "milestone",
    ),
    Case(
        "github",
        _milestone("github"),
        lambda ref: send_as.github_milestone_closed(
            ref.split("#")[0], int(ref.split("#")[1]), SECRETS["github_webhook_secret"]
        ),
        _signed_json(
            "github",
            "/webhooks/github",
            lambda b: (
                signatures.sign_github(b, SECRETS["github_webhook_secret"]) | {"X-GitHub-Event": "milestone"}
            ),
        ),
        lambda: json.dumps({"action": "closed", "milestone": {"number": 3}, "repository": {}}).encode(),
        None,
        "milestone",
    ),
    Case(
        "docusign",
        lambda ref: {"deposit": {"percent": "30"}, "refs": {"docusign": ref}},
        lambda ref: send_as.docusign_envelope_completed(ref, SECRETS["docusign_webhook_secret"]),
        _signed_json(
            "docusign",
            "/webhooks/docusign",
            lambda b: signatures.sign_docusign(b, SECRETS["docusign_webhook_secret"]),
        ),
        lambda: json.dumps({"event": "envelope-completed", "data": {}}).encode(),
        lambda ref: send_as.docusign_envelope_completed(
            ref, SECRETS["docusign_webhook_secret"], generated="2024-06-10T12:00:00.0000000Z"
        ),
        "deposit",
    ),
    Case(
        "pandadoc",
        lambda ref: {"deposit": {"amount": "1000.00"}, "refs": {"pandadoc": ref}},
        lambda ref: send_as.pandadoc_document_completed(ref, SECRETS["pandadoc_webhook_secret"]),
        lambda body: Delivery(
            "pandadoc",
            "/webhooks/pandadoc",
            body,
            query={"signature": signatures.sign_pandadoc(body, SECRETS["pandadoc_webhook_secret"])},
        ),
        lambda: json.dumps(
            [{"event": "document_state_changed", "data": {"status": "document.completed"}}]
        ).encode(),
        None,
        "deposit",
    ),
    Case(
        "generic",
        _milestone("generic"),
        lambda ref: send_as.generic_event(
            f"evt-{uid()}",
            "milestone.completed",
            SECRETS["generic_webhook_secret"],
            ref={"system": "generic", "id": ref},
        ),
        lambda body: Delivery(
            "generic",
            "/webhooks/generic",
            body,
            signatures.sign_generic(body, SECRETS["generic_webhook_secret"], time.time()),
        ),
        lambda: json.dumps({"id": "e1", "type": "milestone.finished"}).encode(),
        lambda ref: send_as.generic_event(
            "e-old",
            "milestone.completed",
            SECRETS["generic_webhook_secret"],
            ref={"system": "generic", "id": ref},
            now=time.time() - 301,
        ),
        "milestone",
    ),
    Case(
        "hubspot",
        lambda ref: {"deposit": {"percent": "25", "on": "deal_won"}, "refs": {"hubspot_deal": ref}},
        lambda ref: send_as.hubspot_deal_won(ref, SECRETS["hubspot_webhook_secret"], public_url=PUBLIC_URL),
        lambda body: Delivery(
            "hubspot",
            "/webhooks/hubspot",
            body,
            signatures.sign_hubspot_v3(
                body,
                SECRETS["hubspot_webhook_secret"],
                method="POST",
                url=PUBLIC_URL + "/webhooks/hubspot",
                timestamp=time.time(),
            ),
        ),
        lambda: json.dumps({"eventId": 1}).encode(),
        lambda ref: send_as.hubspot_deal_won(
            ref, SECRETS["hubspot_webhook_secret"], public_url=PUBLIC_URL, now=time.time() - 301
        ),
        "deposit",
    ),
    Case(
        "pipedrive",
        lambda ref: {"deposit": {"percent": "25", "on": "deal_won"}, "refs": {"pipedrive_deal": ref}},
        lambda ref: send_as.pipedrive_deal_won(int(ref), "invoiceflow", SECRETS["pipedrive_webhook_secret"]),
        lambda body: Delivery(
            "pipedrive",
            "/webhooks/pipedrive",
            body,
            signatures.sign_pipedrive_basic_auth("invoiceflow", SECRETS["pipedrive_webhook_secret"]),
        ),
        lambda: json.dumps(
            {"meta": {"entity": "deal"}, "data": {"status": "won"}, "previous": {"status": "open"}}
        ).encode(),
        None,
        "deposit",
    ),
]


def _ref(case: Case) -> str:
    if case.provider == "github":
        return f"globex/portal-{uid()}#3"
    if case.provider in ("hubspot", "pipedrive"):
        return str(uuid.uuid4().int % 10**9)
    if case.provider in ("jira", "linear"):
        return f"PORT-{uuid.uuid4().int % 10**6}"
    return uid()


def _tamper(delivery: Delivery) -> Delivery:
    return delivery.with_body(delivery.body.replace(b"}", b" }", 1))


@pytest.mark.parametrize("case", CASES, ids=[c.provider for c in CASES])
async def test_provider_delivery_bills_once_and_bad_input_is_refused(stack: Stack, case: Case) -> None:
    api = stack.api
    ref = _ref(case)
    project = await new_project(api, **case.link(ref))
    delivery = case.deliver(ref)

    # Wrong signature, stale timestamp, malformed body: refused, nothing recorded, nothing billed.
    if case.provider != "pipedrive":  # Pipedrive signs nothing: HTTP basic auth is its only check
        assert (await send(api, _tamper(delivery))).status_code == 401
    wrong = Delivery(
        delivery.provider,
        delivery.path,
        delivery.body,
        {k: v for k, v in delivery.headers.items()},
        query=dict(delivery.query),
    )
    for name in list(wrong.headers):
        if name.lower() in (
            "authorization",
            "x-hub-signature",
            "x-hub-signature-256",
            "linear-signature",
            "x-docusign-signature-1",
            "x-hubspot-signature-v3",
            "x-invoiceflow-signature",
        ):
            wrong.headers[name] = delivery.headers[name][:-4] + (
                "AAAA" if delivery.headers[name][-4:] != "AAAA" else "BBBB"
            )
    if "signature" in wrong.query:
        wrong.query["signature"] = "0" * 64
    assert (await send(api, wrong)).status_code == 401
    if case.stale is not None:
        stale = await send(api, case.stale(ref))
        assert stale.status_code == 401 and ("stale" in stale.text or "older" in stale.text), stale.text
    malformed = await send(api, case.sign(case.malformed()))
    assert malformed.status_code == 422, malformed.text
    assert malformed.json()["detail"][0]["msg"]  # says what is wrong

    # The same delivery five times: every answer 2xx, one invoice.
    for _ in range(5):
        response = await send(api, delivery)
        assert response.status_code == 200, response.text
    body = await settled(api, project["id"], invoices=1)
    if case.billed == "deposit":
        expected = (
            "1000.00"
            if case.provider == "pandadoc"
            else ("1200.00" if case.provider == "docusign" else "1000.00")
        )
        assert body["deposit"]["invoice_id"] and body["deposit"]["billed"] == expected
    else:
        assert body["milestones"][0]["status"] == "billed" and body["pending"] == []
    await _assert_single_invoice(stack, project["id"])


async def _assert_single_invoice(stack: Stack, project_id: str) -> None:
    """Give duplicates time to do harm, then count invoices in the database and in Temporal."""
    handle = stack.client.get_workflow_handle(f"project-{project_id}")

    async def quiet():  # type: ignore[no-untyped-def]
        state = await handle.query("state")
        return state if state["pending_triggers"] == 0 else None

    await eventually(quiet, what="project workflow idle")
    body = (await stack.api.get(f"/projects/{project_id}")).json()
    assert len(body["invoices"]) == 1, body["invoices"]


async def test_dropbox_sign_multipart_reply_and_deposit(stack: Stack) -> None:
    api = stack.api
    request_id = uid()
    project = await new_project(api, deposit={"percent": "10"}, refs={"dropbox_sign": request_id})
    key = SECRETS["dropbox_sign_webhook_secret"]
    delivery = send_as.dropbox_sign_all_signed(request_id, key)
    for _ in range(5):
        response = await send(api, delivery)
        assert response.status_code == 200 and response.text == "Hello API Event Received"
    body = await settled(api, project["id"], invoices=1)
    assert body["deposit"]["billed"] == "400.00"
    wrong = send_as.dropbox_sign_all_signed(request_id, "not-the-api-key")
    assert (await send(api, wrong)).status_code == 401
    stale = send_as.dropbox_sign_all_signed(request_id, key, event_time=int(time.time()) - 5 * 86400)
    assert (await send(api, stale)).status_code == 401
    not_json = Delivery("dropbox_sign", "/webhooks/dropbox-sign", form={"json": "{not json"})
    assert (await send(api, not_json)).status_code == 422
    await _assert_single_invoice(stack, project["id"])


async def test_asana_handshake_then_signed_events_of_confirmed_completions(
    temporal_env, make_settings
) -> None:  # type: ignore[no-untyped-def]
    """Asana only says "completed changed": the receiver reads the task and bills a completed one;
    a task that was reopened bills nothing."""
    app, asana = create_asana_standin()
    with serve(app) as served:
        settings = make_settings(
            temporal_env.client,
            public_url=PUBLIC_URL,
            asana_api_base_url=served.base_url,
            asana_api_token=asana.token,
            **SECRETS,
        )
        async with (
            build_worker(temporal_env.client, settings),
            api_client(settings, temporal_env.client) as api,
        ):
            token = SECRETS["asana_webhook_secret"]
            done_gid, reopened_gid = (str(uuid.uuid4().int % 10**16) for _ in range(2))
            asana.add_task(done_gid, "Design sign-off", completed=True)
            asana.add_task(reopened_gid, "Launch", completed=False)
            project = await new_project(
                api,
                milestones=[
                    {
                        "key": "m1",
                        "name": "Design",
                        "amount": "4000.00",
                        "external_refs": {"asana": done_gid},
                    },
                    {
                        "key": "m2",
                        "name": "Launch",
                        "amount": "1000.00",
                        "external_refs": {"asana": reopened_gid},
                    },
                ],
            )
            assert (await send(api, send_as.asana_handshake("wrong-token", ASANA_HOOK))).status_code == 401
            handshake = await send(api, send_as.asana_handshake(token, ASANA_HOOK))
            assert handshake.status_code == 204 and handshake.headers["X-Hook-Secret"] == ASANA_HOOK
            delivery = send_as.asana_task_completed(done_gid, ASANA_HOOK, token)
            assert (
                await send(api, send_as.asana_task_completed(done_gid, "another-secret", token))
            ).status_code == 401
            for _ in range(5):
                assert (await send(api, delivery)).status_code == 200
            reopened = await send(api, send_as.asana_task_completed(reopened_gid, ASANA_HOOK, token))
            assert reopened.status_code == 200 and reopened.json()["status"] == "ignored"
            heartbeat = Delivery(
                "asana",
                delivery.path,
                b'{"events":[]}',
                signatures.sign_asana(b'{"events":[]}', ASANA_HOOK),
                query=delivery.query,
            )
            assert (await send(api, heartbeat)).json()["status"] == "ignored"
            body = await settled(api, project["id"], invoices=1)
            assert [m["status"] for m in body["milestones"]] == ["billed", "pending"]
            await _assert_single_invoice(Stack(api, settings, temporal_env.client), project["id"])


async def test_asana_without_an_api_token_keeps_events_for_an_operator(stack: Stack) -> None:
    api = stack.api
    gid = str(uuid.uuid4().int % 10**16)
    project = await new_project(api, **_milestone("asana")(gid))
    token = SECRETS["asana_webhook_secret"]
    assert (await send(api, send_as.asana_handshake(token, ASANA_HOOK))).status_code == 204
    response = await send(api, send_as.asana_task_completed(gid, ASANA_HOOK, token))
    assert response.status_code == 202 and response.json()["events"][0]["status"] == "unmatched"
    [kept] = [e for e in (await api.get("/webhooks/unmatched")).json() if e["ref"] == gid]
    assert "INVOICEFLOW_ASANA_API_TOKEN" in kept["note"]
    assert (await api.get(f"/projects/{project['id']}")).json()["invoices"] == []
    assert (await api.post(f"/webhooks/events/{kept['id']}/replay")).json()[
        "status"
    ] == "dispatched"  # the operator confirms
    await settled(api, project["id"], invoices=1)


async def test_a_provider_without_a_secret_is_not_an_open_door(temporal_env, make_settings) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(temporal_env.client)
    async with api_client(settings, temporal_env.client) as api:
        delivery = send_as.github_milestone_closed("globex/portal", 3, "any")
        response = await send(api, delivery)
        assert response.status_code == 404 and "INVOICEFLOW_GITHUB_WEBHOOK_SECRET" in response.text


async def test_unmatched_event_is_kept_and_replayed_once_the_mapping_exists(stack: Stack) -> None:
    api = stack.api
    repo_ref = f"globex/portal-{uid()}"
    delivery = send_as.github_milestone_closed(repo_ref, 7, SECRETS["github_webhook_secret"])
    response = await send(api, delivery)
    assert response.status_code == 202 and response.json()["events"][0]["status"] == "unmatched"
    assert (await send(api, delivery)).status_code == 202  # a redelivery is counted, not duplicated
    kept = [e for e in (await api.get("/webhooks/unmatched")).json() if e["ref"] == f"{repo_ref}#7"]
    assert len(kept) == 1 and kept[0]["deliveries"] == 2 and "no project" in kept[0]["note"]

    project = await new_project(api, **_milestone("github")(f"{repo_ref}#7"))
    replayed = await api.post(f"/webhooks/events/{kept[0]['id']}/replay")
    assert replayed.status_code == 200 and replayed.json()["status"] == "dispatched", replayed.text
    body = await settled(api, project["id"], invoices=1)
    assert body["milestones"][0]["status"] == "billed"
    assert not [e for e in (await api.get("/webhooks/unmatched")).json() if e["ref"] == f"{repo_ref}#7"]
    again = await api.post(f"/webhooks/events/{kept[0]['id']}/replay")
    assert again.json()["status"] == "dispatched"
    await _assert_single_invoice(stack, project["id"])


async def test_out_of_order_milestone_before_signature_bills_each_once(stack: Stack) -> None:
    """Milestone 1 done before the contract is signed: it bills in full; the deposit that follows is
    recouped from milestone 2; every amount adds up to the milestones, nothing twice."""
    api = stack.api
    project = await new_project(
        api,
        deposit={"percent": "30"},
        milestones=[
            {"key": "m1", "name": "Design", "amount": "4000.00"},
            {"key": "m2", "name": "Build", "amount": "6000.00"},
        ],
    )
    secret = SECRETS["generic_webhook_secret"]
    pid = project["id"]
    done_m1 = send_as.generic_event(
        f"m1-{uid()}", "milestone.completed", secret, project_id=pid, milestone_key="m1"
    )
    signed = send_as.generic_event(f"sig-{uid()}", "contract.signed", secret, project_id=pid)
    done_m2 = send_as.generic_event(
        f"m2-{uid()}", "milestone.completed", secret, project_id=pid, milestone_key="m2"
    )
    # Another tool (another event id) reporting the same milestone: a different event, the same business fact.
    m1_elsewhere = send_as.generic_event(
        f"m1-other-{uid()}", "milestone.completed", secret, project_id=pid, milestone_key="m1"
    )
    for delivery in (done_m1, done_m1, signed, m1_elsewhere, done_m1, signed, done_m2, done_m2):
        assert (await send(api, delivery)).status_code == 200
    body = await settled(api, pid, invoices=3)
    totals = sorted(i["total"] for i in body["invoices"])
    # deposit 30% of 10,000 = 3,000 (≤ the 6,000 still unbilled); m1 4,000 in full; m2 6,000 − 3,000.
    assert totals == ["3000.00", "3000.00", "4000.00"]
    assert body["billed"] == "10000.00" and body["left"] == "0.00" and body["status"] == "completed"
    assert [m["deposit_applied"] for m in body["milestones"]] == ["0", "3000.00"]
    handle = stack.client.get_workflow_handle(f"project-{pid}")
    await handle.result()
    await record_history(handle, "project_out_of_order_completed")


async def test_operator_triggers_and_validation(stack: Stack) -> None:
    api = stack.api
    customer = (await api.post("/customers", json=customer_body())).json()
    bad = await api.post(
        "/projects",
        json={
            "customer_id": customer["id"],
            "name": "X",
            "deposit": {"percent": "30"},
            "milestones": [{"key": "a", "name": "A", "percent": "50"}],
        },
    )
    assert bad.status_code == 422 and "contract_amount" in bad.text
    floats = await api.post(
        "/projects",
        json={
            "customer_id": customer["id"],
            "name": "X",
            "milestones": [{"key": "a", "name": "A", "amount": 12.5}],
        },
    )
    assert floats.status_code == 422 and "float" in floats.text
    unknown = await api.post(
        "/projects",
        json={
            "customer_id": customer["id"],
            "name": "X",
            "external_refs": {"salesforce": "1"},
            "milestones": [{"key": "a", "name": "A", "amount": "1.00"}],
        },
    )
    assert unknown.status_code == 422 and "salesforce" in unknown.text
    ref = uid()
    await new_project(api, refs={"docusign": ref})
    conflict = await api.post(
        "/projects",
        json={
            "customer_id": customer["id"],
            "name": "X",
            "external_refs": {"docusign": ref},
            "milestones": [{"key": "a", "name": "A", "amount": "1.00"}],
        },
    )
    assert conflict.status_code == 409

    project = await new_project(
        api,
        milestones=[
            {"key": "a", "name": "A", "amount": "400.00"},
            {"key": "b", "name": "B", "amount": "600.00"},
        ],
    )
    assert (await api.post(f"/projects/{project['id']}/milestones/zzz/complete", json={})).status_code == 404
    for _ in range(2):
        assert (
            await api.post(f"/projects/{project['id']}/milestones/a/complete", json={"reference": "call"})
        ).status_code == 202
    body = await settled(api, project["id"], invoices=1)
    assert (
        body["milestones"][0]["status"] == "billed" and body["left"] == "600.00" and body["pending"] == ["b"]
    )

    async def issued():  # type: ignore[no-untyped-def]
        invoice = (await api.get(f"/invoices/{body['invoices'][0]['id']}")).json()
        return invoice if invoice["status"] == "open" else None

    invoice = await eventually(issued, what="milestone invoice issued")
    assert (
        invoice["number"]
        and invoice["total"] == "400.00"
        and invoice["lines"][0]["description"].endswith(": A")
    )


def dead_temporal_address() -> str:
    from socket import socket

    with socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


async def test_temporal_down_still_accepts_keeps_the_event_and_bills_it_once_temporal_is_back(  # type: ignore[no-untyped-def]
    temporal_env, make_settings
) -> None:
    """The 2xx needs only PostgreSQL: with Temporal unreachable the event is accepted and waits in the
    inbox, ``received``, with the error noted, while the dispatcher backs off; an API whose dispatcher
    reaches Temporal hands it over, and the milestone bills once."""
    from temporalio.client import Client

    client = temporal_env.client
    settings = make_settings(client, public_url=PUBLIC_URL, **SECRETS)
    dead = await Client.connect(dead_temporal_address(), lazy=True)
    ref = f"PORT-{uuid.uuid4().int % 10**6}"
    delivery = send_as.jira_issue_done(ref, SECRETS["jira_webhook_secret"])
    async with build_worker(client, settings):
        async with api_client(settings, client) as live:
            project = await new_project(live, **_milestone("jira")(ref))

        async with api_client(settings, dead) as down:
            response = await send(down, delivery)
            assert response.status_code == 200, response.text
            [event] = response.json()["events"]
            assert event["status"] == "accepted" and event["project_id"] == project["id"]

            async def noted():  # type: ignore[no-untyped-def]
                rows = [e for e in (await down.get("/webhooks/unmatched")).json() if e["ref"] == ref]
                return rows if rows and "Temporal is unavailable" in rows[0]["note"] else None

            [kept] = await eventually(noted, what="the hand-over error noted on the event")
            assert kept["status"] == "received" and kept["project_id"] == project["id"]
            replay = await down.post(f"/webhooks/events/{kept['id']}/replay")  # an operator's replay says so
            assert replay.status_code == 503 and "Temporal is unavailable" in replay.text
            redelivered = await send(down, delivery)  # the provider retrying meanwhile: accepted, counted
            assert redelivered.status_code == 200 and redelivered.json()["events"][0]["status"] == "accepted"
            assert (await down.get(f"/projects/{project['id']}")).json()["invoices"] == []

        # Temporal reachable again: the new API's dispatcher sweeps the inbox and hands the event over.
        async with api_client(settings, client) as live:
            stack = Stack(live, settings, client)
            body = await settled(live, project["id"], invoices=1)
            assert body["milestones"][0]["status"] == "billed"
            again = await send(live, delivery)  # a late redelivery: a duplicate now
            assert again.status_code == 200 and again.json()["events"][0]["status"] == "duplicate"
            await _assert_single_invoice(stack, project["id"])
            assert not [e for e in (await live.get("/webhooks/unmatched")).json() if e["ref"] == ref]
            [row] = [r for r in await _events(settings, ref)]
            assert (row.status, row.deliveries, row.note, row.dispatching_until) == (
                "dispatched",
                3,
                "",
                None,
            )


async def _events(settings, ref: str) -> list[Any]:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from persistence.db import session_scope
    from persistence.models import WebhookEvent

    with session_scope(settings.require_database_url()) as session:
        return list(session.scalars(select(WebhookEvent).where(WebhookEvent.ref == ref)))
