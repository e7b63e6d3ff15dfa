"""Who is calling the API and what their role allows.

A bearer token is either ``INVOICEFLOW_API_TOKEN`` (the installation's admin token, acting as
"operator", so scripts written before users existed keep working) or a user's API token (``ifk_...``,
looked up by its SHA-256). A browser with a console session may read (GET) the API too, e.g. the aging
page; it never writes through the JSON API with its cookie (no CSRF token there), only through the
console's forms.

Roles: ``viewer`` reads; ``finance`` also changes invoices, payments, customers, projects and
subscriptions; ``admin`` also manages approval rules, dunning policies and users.
"""

from __future__ import annotations

import hmac

from fastapi import HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials

from persistence.db import session_scope
from persistence.users import Principal, allowed, principal_for_token

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
ADMIN_PREFIXES = ("/approval-rules", "/dunning-policies")
ADMIN_EXCEPTIONS = ("/approval-rules/dry-run",)
INSTALLATION = Principal(email="operator", role="admin")


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"})


def authenticate(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Principal:
    settings = request.app.state.settings
    if credentials is not None:
        given = credentials.credentials
        if hmac.compare_digest(given.encode(), settings.api_token.encode()):
            return INSTALLATION
        with session_scope(settings.require_database_url()) as session:
            principal = principal_for_token(session, given)
        if principal is None:
            raise _unauthorized("wrong, revoked or expired bearer token")
        return principal
    if request.method in SAFE_METHODS:
        from api.console.auth import session_principal

        principal = session_principal(request)
        if principal is not None:
            return principal
    raise _unauthorized(
        "missing bearer token (Authorization: Bearer <INVOICEFLOW_API_TOKEN or a user's API token>)"
    )


def required_role(method: str, path: str) -> str:
    if method in SAFE_METHODS:
        return "viewer"
    if path.startswith(ADMIN_PREFIXES) and not path.startswith(ADMIN_EXCEPTIONS):
        return "admin"
    return "finance"


def authorize(request: Request, principal: Principal) -> None:
    needed = required_role(request.method, request.url.path)
    if not allowed(principal.role, needed):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            detail=f"this needs the {needed} role; {principal.email} is {principal.role}",
        )
