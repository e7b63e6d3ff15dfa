"""HTML pages behind signed links (approval, estimate, hosted invoice): one template environment and the
headers every token page sends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

pages = Environment(
    loader=FileSystemLoader(str(Path(__file__).resolve().parent / "templates")),
    autoescape=select_autoescape(["html"]),
)
HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex"}


def page(template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    return HTMLResponse(
        pages.get_template(template).render(**context), status_code=status_code, headers=HEADERS
    )


def result(status_code: int, heading: str, message: str, tone: str = "", **context: Any) -> HTMLResponse:
    return page("approval_result.html", status_code, heading=heading, message=message, tone=tone, **context)
