"""The console's jinja2 environment: its own templates (autoescaped) and display filters."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from billing.money import format_money

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"


def money(amount: object, currency: str | None) -> str:
    if amount is None or not currency:
        return ""
    try:
        return format_money(Decimal(str(amount)), currency)
    except (InvalidOperation, ValueError, KeyError):
        return f"{amount} {currency}"


def when(value: object) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M UTC") if value.utcoffset() is not None else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return "" if value is None else str(value)


_env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters["money"] = money
_env.filters["when"] = when
_env.globals["new_key"] = lambda: uuid.uuid4().hex
_env.filters["label"] = lambda s: str(s or "").replace("_", " ")


def render_page(template: str, **context: Any) -> str:
    return _env.get_template(template).render(**context)
