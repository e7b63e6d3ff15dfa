"""The books' webhook receivers refuse what the providers did not send: a forged or missing signature,
a stale event, a FreshBooks verifier FreshBooks did not issue (401); a body not of the provider's shape
(422 naming the field); and nothing is recorded for any of them. Xero's intent-to-receive check gets
200 for a right signature and 401 for a wrong one, with empty bodies."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from persistence.db import session_scope
from persistence.models import WebhookEvent
from standins.accounting.hooks import XeroEvents, b64_hmac, freshbooks_form, qbo_event, xero_intent_to_receive
from tests.accounting.books import WEBHOOK_SECRET, books_of
from tests.support import api_client


def _books_rows(url: str) -> int:
    with session_scope(url) as session:
        return int(session.scalar(select(func.count()).where(WebhookEvent.kind == "books.change")) or 0)


def _old(days: int = 30) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


async def test_xero_intent_to_receive_and_refusals(temporal_env, make_settings) -> None:  # type: ignore[no-untyped-def]
    with books_of("xero") as books:
        settings = make_settings(temporal_env.client, **books.settings_overrides())
        books.connect(settings)
        before = _books_rows(settings.require_database_url())
        async with api_client(settings, temporal_env.client) as api:
            for correct, expected in ((True, 200), (False, 401)):
                itr = xero_intent_to_receive(WEBHOOK_SECRET, correct=correct)
                answer = await api.post("/webhooks/xero", content=itr.body, headers=itr.headers)
                assert (answer.status_code, answer.content) == (expected, b"")

            event = XeroEvents(books.tenant).build(
                "INVOICE", "UPDATE", "0f9b7f70-3c2a-4a4b-9c57-5b0b8d9f1e11"
            )
            good = event(WEBHOOK_SECRET)
            forged = event("not-the-key")
            assert (
                await api.post("/webhooks/xero", content=forged.body, headers=forged.headers)
            ).status_code == 401
            unsigned = {"Content-Type": "application/json"}
            assert (await api.post("/webhooks/xero", content=good.body, headers=unsigned)).status_code == 401
            tampered = good.body.replace(b"UPDATE", b"CREATE")
            assert (
                await api.post("/webhooks/xero", content=tampered, headers=good.headers)
            ).status_code == 401

            stale = json.loads(good.body)
            stale["events"][0]["eventDateUtc"] = _old()
            body = json.dumps(stale).encode()
            answer = await api.post(
                "/webhooks/xero", content=body, headers={"x-xero-signature": b64_hmac(WEBHOOK_SECRET, body)}
            )
            assert answer.status_code == 401 and answer.json()["detail"]["reason"] == "stale"

            body = json.dumps({"events": [{"resourceId": "x"}]}).encode()
            answer = await api.post(
                "/webhooks/xero", content=body, headers={"x-xero-signature": b64_hmac(WEBHOOK_SECRET, body)}
            )
            assert answer.status_code == 422 and "eventCategory" in json.dumps(answer.json())
        assert _books_rows(settings.require_database_url()) == before  # nothing was recorded

        unset = make_settings(
            temporal_env.client, **(books.settings_overrides() | {"xero_webhook_key": None})
        )
        async with api_client(unset, temporal_env.client) as api:
            assert (
                await api.post("/webhooks/xero", content=good.body, headers=good.headers)
            ).status_code == 404

        async with api_client(settings, temporal_env.client) as api:  # and the right one is taken
            answer = await api.post("/webhooks/xero", content=good.body, headers=good.headers)
            assert (answer.status_code, answer.content) == (200, b"")
        assert _books_rows(settings.require_database_url()) == before + 1


async def test_qbo_refusals(temporal_env, make_settings) -> None:  # type: ignore[no-untyped-def]
    with books_of("qbo") as books:
        settings = make_settings(temporal_env.client, **books.settings_overrides())
        books.connect(settings)
        before = _books_rows(settings.require_database_url())
        make = qbo_event(books.tenant, "Payment", "123", "Create")
        async with api_client(settings, temporal_env.client) as api:
            forged = make("another-verifier")
            answer = await api.post("/webhooks/qbo", content=forged.body, headers=forged.headers)
            assert answer.status_code == 401 and answer.json()["detail"]["reason"] == "mismatch"

            payload = json.loads(make(WEBHOOK_SECRET).body)
            payload["eventNotifications"][0]["dataChangeEvent"]["entities"][0]["lastUpdated"] = _old()
            body = json.dumps(payload).encode()
            answer = await api.post(
                "/webhooks/qbo", content=body, headers={"intuit-signature": b64_hmac(WEBHOOK_SECRET, body)}
            )
            assert answer.status_code == 401 and answer.json()["detail"]["reason"] == "stale"

            body = json.dumps(
                {"eventNotifications": [{"realmId": books.tenant, "dataChangeEvent": {}}]}
            ).encode()
            answer = await api.post(
                "/webhooks/qbo", content=body, headers={"intuit-signature": b64_hmac(WEBHOOK_SECRET, body)}
            )
            assert answer.status_code == 422 and "entities" in json.dumps(answer.json())
            assert _books_rows(settings.require_database_url()) == before

            other = qbo_event("1234", "Payment", "123", "Create")(WEBHOOK_SECRET)  # another company's event
            answer = await api.post("/webhooks/qbo", content=other.body, headers=other.headers)
            assert answer.status_code == 200 and answer.json()["status"] == "ignored"
            assert _books_rows(settings.require_database_url()) == before

            good = make(WEBHOOK_SECRET)
            answer = await api.post("/webhooks/qbo", content=good.body, headers=good.headers)
            assert answer.status_code == 200 and [e["status"] for e in answer.json()["events"]] == [
                "accepted"
            ]
            again = await api.post("/webhooks/qbo", content=good.body, headers=good.headers)  # a redelivery
            assert again.status_code == 200

            # An operator's replay of a books event still waiting hands it over; it is not "unmatched".
            event_id = answer.json()["events"][0]["event"]
            with session_scope(settings.require_database_url()) as session:
                row = session.get(WebhookEvent, uuid.UUID(event_id))
                assert row is not None
                row.status, row.dispatching_until = "received", datetime.now(UTC) + timedelta(hours=1)
            replayed = await api.post(f"/webhooks/events/{event_id}/replay")
            assert replayed.status_code == 200 and replayed.json()["status"] == "dispatched", replayed.text
        assert _books_rows(settings.require_database_url()) == before + 1


async def test_freshbooks_verification_and_refusals(temporal_env, make_settings) -> None:  # type: ignore[no-untyped-def]
    with books_of("freshbooks") as books:
        settings = make_settings(temporal_env.client, **books.settings_overrides())
        books.connect(settings)
        before = _books_rows(settings.require_database_url())
        state = books.state
        callback = state.register_callback("payment", "http://unused.example/webhooks/freshbooks")
        fields: dict[str, Any] = state._fields("callback.verify", callback.callback_id)
        async with api_client(settings, temporal_env.client) as api:
            wrong = freshbooks_form({**fields, "verifier": "made-up"}, "made-up")
            answer = await api.post("/webhooks/freshbooks", content=wrong.body, headers=wrong.headers)
            assert answer.status_code == 401 and answer.json()["detail"]["reason"] == "verification_refused"
            assert not callback.verified

            handshake = freshbooks_form({**fields, "verifier": callback.verifier}, callback.verifier)
            answer = await api.post("/webhooks/freshbooks", content=handshake.body, headers=handshake.headers)
            assert answer.status_code == 200, answer.text
            assert callback.verified  # we sent the verifier back through FreshBooks' API

            event = state._fields("payment.create", 4242)
            forged = freshbooks_form(event, "not-the-verifier")
            answer = await api.post("/webhooks/freshbooks", content=forged.body, headers=forged.headers)
            assert answer.status_code == 401
            assert _books_rows(settings.require_database_url()) == before
            good = freshbooks_form(event, callback.verifier)
            answer = await api.post("/webhooks/freshbooks", content=good.body, headers=good.headers)
            assert answer.status_code == 200 and answer.json()["status"] == "ok", answer.text
        assert _books_rows(settings.require_database_url()) == before + 1


def test_freshbooks_signature_is_over_the_form_as_json() -> None:
    """Pinned to FreshBooks' documented computation: base64 HMAC-SHA256 of ``json.dumps(form)``."""
    import base64
    import hashlib
    import hmac

    from api.webhooks.books_signatures import verify_freshbooks
    from api.webhooks.signatures import SignatureError

    body = (
        b"name=invoice.create&object_id=1234567&account_id=6BApk&business_id=6543&identity_id=1234&user_id=1"
    )
    message = json.dumps(
        {
            "name": "invoice.create",
            "object_id": "1234567",
            "account_id": "6BApk",
            "business_id": "6543",
            "identity_id": "1234",
            "user_id": "1",
        }
    ).encode()
    signature = base64.b64encode(hmac.new(b"verifier-1", message, hashlib.sha256).digest()).decode()
    verify_freshbooks({"X-FreshBooks-Hmac-SHA256": signature}, body, ["verifier-1"])
    with pytest.raises(SignatureError):
        verify_freshbooks({"X-FreshBooks-Hmac-SHA256": signature}, body, ["verifier-2"])
