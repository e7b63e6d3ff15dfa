"""Time entries and change orders of a project: `POST /projects/{id}/time-entries`, `.../change-orders`.

A time entry is stored in the request's transaction (deduplicated on its ``external_id`` within the
project) and then handed to the project's workflow as a ``time_logged`` trigger, which bills it when a
threshold rule is reached (a calendar rule bills at the period's end). A change order is checked and
stored; one that needs no signature is handed to the workflow at once to be applied, one that needs a
signature waits for the e-sign webhook of its envelope.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Request, Response, status
from pydantic import BaseModel, Field, model_validator
from sqlalchemy.orm import Session

from api.deps import Db, DbDep, IdempotencyKey, Operator, SettingsDep, TemporalDep
from api.errors import unprocessable
from api.plan_schemas import DepositCreate, Key, MilestoneCreate
from api.schemas import DecimalStr, Strict
from api.webhooks.dispatcher import TemporalUnavailable, signal_with_start
from billing.errors import MoneyError
from persistence import change_order_approvals as approvals
from persistence import change_orders, time_entries
from persistence import projects as repo
from persistence.models import BillableItem, ChangeOrder
from persistence.webhook_inbox import Route
from services.idempotency import create_once, fingerprint
from workflows.payloads import ProjectTrigger, TriggerKind

router = APIRouter(tags=["projects"])


def _money_error(exc: MoneyError) -> HTTPException:
    """A MoneyError names its field first ("hours: ..."): a 422 at that field."""
    field, _, _message = str(exc).partition(":")
    return unprocessable(["body", *field.strip().replace("]", "").replace("[", ".").split(".")], str(exc))


class TimeEntryCreate(Strict):
    person: str = Field(min_length=1, max_length=200)
    date: date
    hours: DecimalStr
    description: str = Field(min_length=1, max_length=1000)
    rate: DecimalStr | None = Field(
        default=None, description="Default: the role's rate card, else the rule's."
    )
    role: str | None = Field(default=None, max_length=80)
    billable: bool = True
    external_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=300,
        description="The entry's id in its tool: sent twice, stored once.",
    )


class TimeEntryOut(BaseModel):
    id: uuid.UUID
    project_id: uuid.UUID
    person: str | None
    role: str | None
    date: date
    hours: str
    rate: str
    amount: str
    description: str
    billable: bool
    external_id: str | None
    source: str
    invoice_id: uuid.UUID | None
    created: bool = True


def _entry_out(item: BillableItem, created: bool = True) -> TimeEntryOut:
    assert item.project_id is not None
    return TimeEntryOut(
        id=item.id,
        project_id=item.project_id,
        person=item.person,
        role=item.role,
        date=item.incurred_on,
        hours=str(item.quantity),
        rate=str(item.unit_price),
        amount=str(item.amount),
        description=item.description,
        billable=item.billable,
        external_id=item.external_id,
        source=item.source,
        invoice_id=item.invoice_id,
        created=created,
    )


async def _hand_over(
    temporal: TemporalDep, settings: SettingsDep, project_id: uuid.UUID, trigger: ProjectTrigger
) -> None:
    try:
        await signal_with_start(temporal, settings, Route(project_id), trigger)
    except TemporalUnavailable as exc:
        raise HTTPException(503, detail=f"stored; Temporal is unavailable, retry the request: {exc}") from exc


async def _project(db: Db, project_id: uuid.UUID) -> None:
    def tx(session: Session) -> None:
        try:
            repo.get_project(session, project_id)
        except repo.ProjectNotFound as exc:
            raise HTTPException(404, detail=str(exc)) from exc

    await db.run(tx)


@router.post(
    "/projects/{project_id}/time-entries", status_code=status.HTTP_201_CREATED, response_model=TimeEntryOut
)
async def log_time(
    project_id: uuid.UUID,
    body: TimeEntryCreate,
    response: Response,
    db: DbDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    _: Operator,
    idempotency_key: IdempotencyKey = None,
) -> TimeEntryOut:
    """Log time on a project; an ``external_id`` already logged answers with that entry (200)."""
    await _project(db, project_id)
    created_now: dict[str, bool] = {}

    def tx(session: Session) -> uuid.UUID:
        project = repo.get_project(session, project_id, lock=True)
        try:
            item, created = time_entries.add_entry(
                session,
                project,
                time_entries.NewTimeEntry(
                    person=body.person,
                    incurred_on=body.date,
                    hours=body.hours,
                    description=body.description,
                    rate=body.rate,
                    role=body.role,
                    billable=body.billable,
                    external_id=body.external_id,
                ),
            )
        except MoneyError as exc:
            raise _money_error(exc) from None
        created_now["created"] = created
        return item.id

    item_id, replayed = await create_once(db, "projects.time_entries", idempotency_key, fingerprint(body), tx)
    if idempotency_key is not None:
        response.headers["Idempotent-Replayed"] = "true" if replayed else "false"
    created = replayed or created_now.get("created", False)  # a replay answers as its first request did
    if not created:
        response.status_code = status.HTTP_200_OK
    await _hand_over(
        temporal,
        settings,
        project_id,
        ProjectTrigger(
            event_key=f"time:{item_id}", kind=TriggerKind.TIME_LOGGED, provider="api", ref=str(item_id)
        ),
    )
    return await db.run(lambda s: _entry_out(s.get(BillableItem, item_id), created))  # type: ignore[arg-type]


class MilestoneChange(Strict):
    key: Key
    name: str | None = Field(default=None, min_length=1, max_length=300)
    amount: DecimalStr | None = None


class SignatureCreate(Strict):
    system: Literal["docusign", "dropbox_sign", "pandadoc", "generic"] = "docusign"
    envelope_id: str = Field(min_length=1, max_length=300)


class ChangeOrderCreate(Strict):
    reason: str = Field(min_length=1, max_length=2000)
    reference: str = Field(default="", max_length=200)
    add: list[MilestoneCreate] = Field(default_factory=list, max_length=100)
    remove: list[Key] = Field(default_factory=list, max_length=100)
    change: list[MilestoneChange] = Field(default_factory=list, max_length=100)
    contract_amount: DecimalStr | None = Field(
        default=None,
        description="The amended contract; default: the old one moved by what the milestones moved.",
    )
    deposit: DepositCreate | None = Field(
        default=None, description="Its own deposit: an amount, or a percent of what it adds to the contract."
    )
    tm_cap: DecimalStr | None = Field(
        default=None, description="A new time & materials cap: time waiting over the old one is billed."
    )
    signature: SignatureCreate | None = Field(
        default=None, description="Applied when this envelope is signed (its e-sign webhook), not before."
    )

    @model_validator(mode="after")
    def _changes_something(self) -> ChangeOrderCreate:
        changes = (self.add, self.remove, self.change, self.contract_amount, self.deposit, self.tm_cap)
        if not any(c for c in changes if c is not None):
            raise ValueError(
                "add, remove, change, contract_amount, deposit or tm_cap: a change order changes something"
            )
        return self

    def changes(self) -> dict[str, Any]:
        data = self.model_dump(
            mode="json", include={"add", "remove", "change", "contract_amount", "deposit", "tm_cap"}
        )
        if data.get("deposit"):
            data["deposit"].pop("on", None)
        return data


@router.post("/projects/{project_id}/change-orders", status_code=status.HTTP_201_CREATED)
async def create_change_order(
    project_id: uuid.UUID,
    body: ChangeOrderCreate,
    response: Response,
    db: DbDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    operator: Operator,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    await _project(db, project_id)

    def tx(session: Session) -> uuid.UUID:
        project = repo.get_project(session, project_id, lock=True)
        signature = (body.signature.system, body.signature.envelope_id) if body.signature else None
        if signature is not None and repo.resolve(session, *signature) is not None:
            raise HTTPException(409, detail=f"{signature[0]} {signature[1]!r} already routes to a project")
        try:
            order = change_orders.create(
                session,
                project,
                body.changes(),
                reason=body.reason,
                reference=body.reference,
                signature=signature,
                actor=operator,
            )
        except MoneyError as exc:
            raise _money_error(exc) from None
        return order.id

    order_id, replayed = await create_once(
        db, "projects.change_orders", idempotency_key, fingerprint(body), tx
    )
    if idempotency_key is not None:
        response.headers["Idempotent-Replayed"] = "true" if replayed else "false"
    out = await db.run(
        lambda s: change_orders.change_order_out(s.get(ChangeOrder, order_id))  # type: ignore[arg-type]
    )
    if out["status"] == "pending_approval":  # the project's workflow asks the approvers
        await _hand_over(
            temporal,
            settings,
            project_id,
            ProjectTrigger(
                event_key=f"change-order:{order_id}:step0",
                kind=TriggerKind.CHANGE_ORDER,
                provider="api",
                ref=str(order_id),
                actor=operator,
            ),
        )
    elif body.signature is None:
        await _hand_over(
            temporal,
            settings,
            project_id,
            ProjectTrigger(
                event_key=f"change-order:{order_id}",
                kind=TriggerKind.CHANGE_ORDER,
                provider="api",
                ref=str(order_id),
                actor=operator,
            ),
        )
    return await db.run(
        lambda s: change_orders.change_order_out(s.get(ChangeOrder, order_id))  # type: ignore[arg-type]
    )


class ChangeOrderDecision(Strict):
    approver: str = Field(min_length=3, max_length=320, description="The approver decided for.")
    decision: Literal["approve", "reject"]
    comment: str = Field(default="", max_length=2000, description="Required to reject.")

    @model_validator(mode="after")
    def _reason_to_reject(self) -> ChangeOrderDecision:
        if self.decision == "reject" and not self.comment.strip():
            raise ValueError("comment: a rejection needs a reason")
        return self


@router.post("/projects/{project_id}/change-orders/{order_id}/decisions")
async def decide_change_order(
    project_id: uuid.UUID,
    order_id: uuid.UUID,
    body: ChangeOrderDecision,
    request: Request,
    db: DbDep,
    operator: Operator,
) -> dict[str, Any]:
    """An operator decides for one of the current step's approvers, as the approver's link would."""

    def tx(session: Session) -> dict[str, Any]:
        order = session.get(ChangeOrder, order_id)
        if order is None or order.project_id != project_id:
            raise HTTPException(404, detail=f"project {project_id} has no change order {order_id}")
        decided = approvals.decide_and_queue(
            session,
            order_id,
            step=(order.approval or {}).get("step", 0),
            approver=body.approver.strip().lower(),
            token_id=f"operator:{uuid.uuid4()}",
            decision=body.decision,
            comment=body.comment.strip(),
            via=f"operator:{operator}",
        )
        if decided.outcome == "refused":
            raise HTTPException(409, detail=decided.message)
        return change_orders.change_order_out(order)

    out = await db.run(tx)
    request.app.state.dispatcher.wake()
    return out
