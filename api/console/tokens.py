"""A user's own API tokens in the console: mint one (the secret is shown on this one page, once),
see when each was last used, revoke. Admins mint tokens for others with `invoiceflow tokens`."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from api.console.auth import Current, current, guard, page, redirect
from persistence import users
from persistence.db import session_scope

router = APIRouter(prefix="/app", include_in_schema=False)


def _url(request: Request) -> str:
    return request.app.state.settings.require_database_url()


@router.get("/tokens")
async def tokens(request: Request, who: Annotated[Current, Depends(current)]) -> Response:
    def tx() -> list[users.ApiToken]:
        with session_scope(_url(request)) as session:
            return users.list_tokens(session, who.principal.email)

    return page(request, "tokens.html", tokens=await run_in_threadpool(tx), secret=None)


@router.post("/tokens")
async def create_token(request: Request) -> Response:
    who, form = await guard(request, "viewer")
    name = str(form.get("name") or "").strip()[:120]
    role = str(form.get("role") or who.principal.role)

    def tx() -> tuple[str | None, str, list[users.ApiToken]]:
        with session_scope(_url(request)) as session:
            try:
                _, secret = users.create_token(
                    session, who.principal.email, name, role, actor=who.principal.actor
                )
                error = ""
            except users.UserError as exc:
                secret, error = None, str(exc)
        with session_scope(_url(request)) as session:
            return secret, error, users.list_tokens(session, who.principal.email)

    secret, error, rows = await run_in_threadpool(tx)
    if error:
        return redirect(request, "/app/tokens", ("error", f"Not created: {error}"))
    return page(request, "tokens.html", tokens=rows, secret=secret)


@router.post("/tokens/{token_id}/revoke")
async def revoke(request: Request, token_id: uuid.UUID) -> Response:
    who, _ = await guard(request, "viewer")

    def tx() -> str:
        with session_scope(_url(request)) as session:
            try:
                users.revoke_token(session, token_id, actor=who.principal.actor, owner=who.principal.user_id)
            except users.UserError as exc:
                return str(exc)
        return ""

    error = await run_in_threadpool(tx)
    return redirect(request, "/app/tokens", ("error", error) if error else ("ok", "Token revoked."))
