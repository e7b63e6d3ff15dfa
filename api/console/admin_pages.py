"""Console pages beyond the invoices: projects (billed, pending, left; trigger a milestone or the
signature by hand), subscriptions (next dates; pause, resume, cancel, new terms), approval rules and
dunning policies (each edited as YAML with the API's validation, by admins), users (admins)."""

from __future__ import annotations

import uuid
from typing import Annotated

import yaml
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from api.console.actions import ActionRefused, MoreActions
from api.console.auth import Current, current, guard, page, redirect
from api.routes import dunning, projects, subscriptions
from persistence import approval_rules as rules_repo
from persistence import users
from persistence.db import session_scope
from persistence.models import Customer

router = APIRouter(prefix="/app", include_in_schema=False)
LINE_FIELDS = ("description", "quantity", "unit_price", "tax_rate", "discount_percent", "discount_amount")
User = Annotated[Current, Depends(current)]


def _names(session: Session) -> dict[uuid.UUID, str]:
    return {c.id: c.name for c in session.query(Customer).all()}


@router.get("/projects")
async def project_list(request: Request, who: User) -> Response:
    rows = await projects.list_projects(db=request.app.state.db, _=who.principal.actor, limit=200)
    names = await request.app.state.db.run(_names)
    return page(request, "projects.html", rows=rows, names=names)


@router.get("/projects/{project_id}")
async def project_page(request: Request, project_id: uuid.UUID, who: User) -> Response:
    try:
        project = await projects.get_project(
            project_id=project_id, db=request.app.state.db, _=who.principal.actor
        )
    except HTTPException:
        return page(request, "not_found.html", status_code=404, what=f"project {project_id}")
    names = await request.app.state.db.run(_names)
    return page(
        request,
        "project.html",
        p=project,
        customer=names.get(project.customer_id, ""),
        can_act=who.principal.can_act(),
    )


@router.post("/projects/{project_id}/{action}")
async def project_action(request: Request, project_id: uuid.UUID, action: str) -> Response:
    who, form = await guard(request, "finance")
    act = MoreActions(request, who.principal.actor)
    reference = str(form.get("reference") or "")[:200]
    back = f"/app/projects/{project_id}"
    try:
        if action == "contract-signed":
            await act.contract_signed(project_id, reference)
            done = "Signature recorded: the deposit (if any) is billed."
        elif action == "milestone":
            key = str(form.get("key") or "")[:80]
            await act.complete_milestone(project_id, key, reference)
            done = f"Milestone {key} done: it is billed once."
        else:
            return redirect(request, back, ("error", f"unknown action {action!r}"))
    except ActionRefused as refused:
        return redirect(request, back, ("error", f"Not done: {refused.message}"))
    return redirect(request, back, ("ok", done))


@router.get("/subscriptions")
async def subscription_list(request: Request, who: User) -> Response:
    db = request.app.state.db
    rows = await subscriptions.list_subscriptions(
        db=db, _=who.principal.actor, customer_id=None, limit=200, offset=0
    )
    detailed = [await subscriptions._load(db, s.id, 3) for s in rows]
    names = await db.run(_names)
    return page(request, "subscriptions.html", rows=detailed, names=names, can_act=who.principal.can_act())


def _term_lines(form: FormData) -> list[dict[str, str]]:
    """The terms form's lines (a blank row is no line); the API's validation judges the rest."""
    lines = []
    for i in range(50):
        values = {k: str(form.get(f"{k}-{i}") or "").strip()[:1000] for k in LINE_FIELDS}
        if not values["description"] and not values["unit_price"]:
            continue
        lines.append({k: v for k, v in values.items() if v})
    return lines


@router.post("/subscriptions/{subscription_id}/{action}")
async def subscription_action(request: Request, subscription_id: uuid.UUID, action: str) -> Response:
    who, form = await guard(request, "finance")
    act = MoreActions(request, who.principal.actor)
    try:
        if action == "pause":
            await act.pause_subscription(subscription_id, str(form.get("resume_on") or "")[:10] or None)
            done = "Paused."
        elif action == "resume":
            await act.resume_subscription(subscription_id)
            done = "Resumed."
        elif action == "cancel":
            await act.cancel_subscription(subscription_id, form.get("at_period_end") == "yes")
            done = "Canceled."
        elif action == "terms":
            await act.change_subscription_terms(subscription_id, _term_lines(form))
            done = "New terms: they apply from the next invoice on."
        else:
            return redirect(request, "/app/subscriptions", ("error", f"unknown action {action!r}"))
    except ActionRefused as refused:
        return redirect(request, "/app/subscriptions", ("error", f"Not done: {refused.message}"))
    return redirect(request, "/app/subscriptions", ("ok", done))


@router.get("/rules")
async def rules(request: Request, who: User) -> Response:
    db = request.app.state.db

    def tx(session: Session) -> str:
        definitions = [row.definition for row, _ in rules_repo.load_all(session)]
        return yaml.safe_dump({"rules": definitions}, sort_keys=False, allow_unicode=True)

    text = await db.run(tx)
    policies = await dunning.list_policies(db=db, _=who.principal.actor)
    texts = [(p, yaml.safe_dump(p.policy, sort_keys=False, allow_unicode=True)) for p in policies]
    return page(request, "rules.html", text=text, policies=texts, is_admin=who.principal.role == "admin")


@router.post("/rules")
async def save_rules(request: Request) -> Response:
    who, form = await guard(request, "admin")
    try:
        saved = await MoreActions(request, who.principal.actor).replace_approval_rules(
            str(form.get("rules") or "")[:200_000]
        )
    except ActionRefused as refused:
        return redirect(request, "/app/rules", ("error", f"Not saved: {refused.message}"))
    return redirect(request, "/app/rules", ("ok", f"{len(saved)} approval rule(s) saved."))


@router.post("/rules/dunning-policies")
async def save_dunning_policy(request: Request) -> Response:
    """One dunning policy from its YAML: ``name`` given = replace that one, none = a new one."""
    who, form = await guard(request, "admin")
    name = str(form.get("name") or "").strip()[:200] or None
    try:
        saved = await MoreActions(request, who.principal.actor).save_dunning_policy(
            name, str(form.get("policy") or "")[:100_000]
        )
    except ActionRefused as refused:
        return redirect(request, "/app/rules", ("error", f"Policy not saved: {refused.message}"))
    return redirect(request, "/app/rules", ("ok", f"Dunning policy {saved.name} saved."))


def _url(request: Request) -> str:
    return request.app.state.settings.require_database_url()


@router.get("/users")
async def user_list(request: Request, who: User) -> Response:
    if who.principal.role != "admin":
        return page(
            request, "not_found.html", status_code=403, what="page for you here: users are the admin's"
        )

    def tx() -> list[users.User]:
        with session_scope(_url(request)) as session:
            return users.list_users(session)

    return page(request, "users.html", rows=await run_in_threadpool(tx))


@router.post("/users")
async def user_action(request: Request) -> Response:
    who, form = await guard(request, "admin")
    action = str(form.get("action") or "")
    email = str(form.get("email") or "").strip()[:190]
    actor = who.principal.actor

    def tx() -> str:
        with session_scope(_url(request)) as session:
            if action == "create":
                users.create_user(
                    session, email, str(form.get("role") or ""), str(form.get("password") or ""), actor=actor
                )
                return f"Created {email}."
            if action == "set-role":
                users.set_role(session, email, str(form.get("role") or ""), actor=actor)
                return f"{email} is now {form.get('role')}."
            if action in ("disable", "enable"):
                if email == who.principal.email:
                    raise users.UserError("you cannot disable yourself")
                users.set_disabled(session, email, action == "disable", actor=actor)
                return f"{email} {action}d."
            if action == "reset-password":
                users.reset_password(session, email, str(form.get("password") or ""), actor=actor)
                return f"Password of {email} reset; their sessions ended."
            raise users.UserError(f"unknown action {action!r}")

    try:
        done = await run_in_threadpool(tx)
    except users.UserError as exc:
        return redirect(request, "/app/users", ("error", f"Not done: {exc}"))
    return redirect(request, "/app/users", ("ok", done))
