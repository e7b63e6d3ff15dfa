"""`inbox.record_routed`, the receivers' one statement, against PostgreSQL: a first delivery no project
knows is unmatched with its reason; its redelivery once the project exists is routed; a redelivery of a
row waiting for the dispatcher keeps the last hand-over error; a handed-over row stays handed over and only
counts the delivery; the dispatcher processes are woken at commit, only for a routed row."""

from __future__ import annotations

import uuid
from decimal import Decimal

import psycopg

from persistence import projects as projects_repo
from persistence import webhook_inbox as inbox
from persistence.db import session_scope
from persistence.models import Customer, WebhookEvent
from persistence.webhook_inbox import InboundEvent


def _event(ref: str, dedupe: str) -> InboundEvent:
    return InboundEvent(
        "jira",
        dedupe,
        "milestone_done",
        "jira_issue",
        ref,
        summary={"title": "Design done"},
        hints={"milestone_key": "design"},
    )


def _project(url: str, ref: str) -> uuid.UUID:
    """A project linked to the Jira issue `ref`."""
    with session_scope(url) as session:
        customer = Customer(
            name=f"Inbox {uuid.uuid4().hex[:6]}",
            emails=["ap@inbox.example.com"],
            currency="EUR",
            timezone="UTC",
            payment_terms="net_30",
            tags=[],
        )
        session.add(customer)
        session.flush()
        project = projects_repo.create_project(
            session,
            projects_repo.NewProject(
                customer=customer,
                name="Inbox project",
                currency="EUR",
                payment_terms="net_30",
                milestones=[
                    projects_repo.NewMilestone(key="design", name="Design", amount=Decimal("100.00"))
                ],
                refs={"jira_issue": ref},
            ),
        )
        session.flush()
        return project.id


def _row(url: str, event_id: uuid.UUID) -> tuple[str, uuid.UUID | None, str | None, str, int]:
    with session_scope(url) as session:
        row = session.get(WebhookEvent, event_id)
        assert row is not None
        return row.status, row.project_id, row.milestone_key, row.note, row.deliveries


def _listen(url: str) -> psycopg.Connection:
    conn = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)
    conn.execute(f"LISTEN {inbox.NOTIFY_CHANNEL}")
    return conn


def _woken(conn: psycopg.Connection) -> int:
    return sum(1 for _ in conn.notifies(timeout=0.5))


def test_unmatched_then_routed_then_waiting_then_handed_over(pg_url: str) -> None:
    ref, dedupe = f"PROJ-{uuid.uuid4().hex[:6]}", f"evt-{uuid.uuid4().hex}"
    listener = _listen(pg_url)
    try:
        with session_scope(pg_url) as session:
            first = inbox.record_routed(session, _event(ref, dedupe), {"n": 1}, notify=True)
        assert first.status == "unmatched" and first.project_id is None
        assert first.note == f"no project is linked to jira_issue {ref!r}"
        assert _row(pg_url, first.id) == ("unmatched", None, None, first.note, 1)
        assert _woken(listener) == 0  # nothing for the dispatcher to hand over

        project_id = _project(pg_url, ref)
        with session_scope(pg_url) as session:
            second = inbox.record_routed(session, _event(ref, dedupe), {"n": 2}, notify=True)
        assert (second.id, second.status, second.project_id) == (first.id, "received", project_id)
        assert _row(pg_url, first.id) == ("received", project_id, "design", "", 2)
        assert _woken(listener) == 1

        with session_scope(pg_url) as session:  # a hand-over failed and left its error
            inbox.hand_over_failed(session, [first.id], "temporal unreachable", retry_in_s=5)
        note = _row(pg_url, first.id)[3]
        assert "temporal unreachable" in note
        with session_scope(pg_url) as session:
            third = inbox.record_routed(session, _event(ref, dedupe), {"n": 3}, notify=False)
        assert third.status == "received" and _row(pg_url, first.id) == (
            "received",
            project_id,
            "design",
            note,
            3,
        )
        assert _woken(listener) == 0  # asked not to (the dispatcher runs in the API and is woken there)

        with session_scope(pg_url) as session:
            inbox.mark_dispatched(session, [first.id])
        with session_scope(pg_url) as session:
            fourth = inbox.record_routed(session, _event(ref, dedupe), {"n": 4}, notify=True)
        assert fourth.status == "dispatched"
        assert _row(pg_url, first.id)[:3] == ("dispatched", project_id, "design")
        assert _row(pg_url, first.id)[4] == 4
        assert _woken(listener) == 0
    finally:
        listener.close()


def test_a_rolled_back_transaction_records_nothing_and_wakes_nobody(pg_url: str) -> None:
    ref, dedupe = f"PROJ-{uuid.uuid4().hex[:6]}", f"evt-{uuid.uuid4().hex}"
    _project(pg_url, ref)
    listener = _listen(pg_url)
    try:
        try:
            with session_scope(pg_url) as session:
                recorded = inbox.record_routed(session, _event(ref, dedupe), {}, notify=True)
                assert recorded.status == "received"
                raise RuntimeError("the request failed after recording")
        except RuntimeError:
            pass
        with session_scope(pg_url) as session:
            assert session.get(WebhookEvent, recorded.id) is None
        assert _woken(listener) == 0
    finally:
        listener.close()
