"""The operator console: server-rendered pages under ``/app`` for a finance team (jinja2 templates and
one stylesheet and script shipped in this package, no CDN). ``install(app)`` adds it to the API."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from api.console import admin_pages, auth, customer_pages, estimate_pages, forms, pages, tokens
from api.console.rendering import STATIC


def install(app: FastAPI) -> None:
    app.mount("/app/static", StaticFiles(directory=STATIC), name="console-static")
    app.include_router(auth.router)
    app.include_router(tokens.router)
    app.include_router(pages.router)
    app.include_router(forms.router)
    app.include_router(admin_pages.router)
    app.include_router(customer_pages.router)
    app.include_router(estimate_pages.router)

    @app.exception_handler(auth.LoginRequired)
    async def _login(request: Request, exc: auth.LoginRequired) -> Response:
        return auth.login_redirect(request, exc)
