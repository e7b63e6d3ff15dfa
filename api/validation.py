"""Shared input types of the API: what every request field must be before any code acts on it.

One place for the rules that used to surface later as a 500 or as an activity retrying forever:

- **Text** never holds a NUL character (PostgreSQL cannot store one) or a lone UTF-16 surrogate (it has
  no UTF-8 encoding): ``check_text`` walks any parsed value, and every request model refuses both.
- **Dates** are ISO strings (``2026-12-31``; a number such as ``+0.0`` is not read as 1970-01-01) inside
  ``billing.limits``' window; date-times also carry their time zone.
- **Money** is a plain decimal string (or an integer): no float, no exponent, no NaN or Infinity; the
  OpenAPI document says so.
- **Paging** offsets stay within what PostgreSQL's ``bigint`` takes (and far below).
- **JSON** a receiver parses itself (``load_json``) is bounded in depth: a body nested 100,000 deep is
  a 422, not a ``RecursionError``.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, PlainSerializer, WithJsonSchema

from billing.limits import EARLIEST_DATE, LATEST_DATE, check_date
from billing.money import parse_decimal

MAX_PAGE_OFFSET = 1_000_000
MAX_JSON_DEPTH = 64
_SURROGATE = re.compile("[\ud800-\udfff]")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_ISO_DATETIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?(Z|[+-][0-9]{2}:?[0-9]{2})"
)


class BadText(ValueError):
    """Text PostgreSQL cannot store; ``path`` names where (``lines[0].description``)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path


def text_problem(value: str) -> str | None:
    """Why a string cannot be stored, or None."""
    if "\x00" in value:
        return "must not contain a NUL character (\\u0000)"
    if _SURROGATE.search(value):
        return "must not contain a lone UTF-16 surrogate (invalid Unicode)"
    return None


def check_text(value: Any, path: str = "") -> Any:
    """The value itself, once every string in it (keys too, at any depth) is storable text."""
    if isinstance(value, str):
        problem = text_problem(value)
        if problem:
            raise BadText(path, problem)
    elif isinstance(value, dict):
        for key, item in value.items():
            check_text(key, f"{path}.{key}" if path else str(key))
            check_text(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            check_text(item, f"{path}[{i}]")
    return value


def _iso_date(value: object) -> object:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value.strip()):
        raise ValueError(f"expected a date as YYYY-MM-DD, got {value!r}")
    return value.strip()


def _iso_datetime(value: object) -> object:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("needs a time zone, e.g. 2026-11-25T10:00:00Z")
        return value
    if not isinstance(value, str) or not _ISO_DATETIME.fullmatch(value.strip()):
        raise ValueError(f"expected a date-time with time zone such as 2026-11-25T10:00:00Z, got {value!r}")
    return value.strip()


def _in_window(value: date) -> date:
    try:
        return check_date(value, "date")
    except ValueError as exc:
        raise ValueError(str(exc).removeprefix("date: ")) from None


def _decimal(value: object) -> Decimal:
    return parse_decimal(value, field="value")


_DATE_SCHEMA = {
    "type": "string",
    "format": "date",
    "description": f"YYYY-MM-DD, from {EARLIEST_DATE.isoformat()} to {LATEST_DATE.isoformat()}",
}
_DATETIME_SCHEMA = {
    "type": "string",
    "format": "date-time",
    "description": "RFC 3339 with a time zone, e.g. 2026-11-25T10:00:00Z, in "
    f"{EARLIEST_DATE.year}..{LATEST_DATE.year}",
}
DECIMAL_PATTERN = r"^\s*-?[0-9]+(\.[0-9]+)?\s*$"
_DECIMAL_SCHEMA = {
    "anyOf": [{"type": "string", "pattern": DECIMAL_PATTERN, "format": "decimal"}, {"type": "integer"}],
    "description": 'A decimal number as a string, e.g. "12.50" (no floats, no exponent).',
}

ApiDate = Annotated[
    date, BeforeValidator(_iso_date), AfterValidator(_in_window), WithJsonSchema(_DATE_SCHEMA)
]
ApiDateTime = Annotated[
    datetime, BeforeValidator(_iso_datetime), AfterValidator(_in_window), WithJsonSchema(_DATETIME_SCHEMA)
]
DecimalStr = Annotated[
    Decimal,
    BeforeValidator(_decimal),
    PlainSerializer(lambda d: str(d), return_type=str),
    WithJsonSchema(_DECIMAL_SCHEMA),
]


def _storable(value: str) -> str:
    problem = text_problem(value)
    if problem:
        raise ValueError(problem)
    return value


# A form field or header value that ends up in the database (a comment on an approval link's page).
StorableText = Annotated[str, AfterValidator(_storable)]


def text_fields_validator(value: Any) -> Any:
    """For a model's ``field_validator("*")``: the value, or a ValueError pydantic puts at the field."""
    try:
        return check_text(value)
    except BadText as exc:
        raise ValueError(str(exc)) from None


class BadJson(ValueError):
    """A body a receiver cannot use: not JSON, nested too deep, or holding unstorable text."""


def _depth_ok(body: bytes, limit: int) -> bool:
    """Nesting depth of a JSON text, counting brackets outside strings, without parsing it."""
    depth = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            if depth > limit:
                return False
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return True


def load_json(body: bytes, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse a webhook body: valid UTF-8 JSON, at most ``max_depth`` deep, finite numbers, storable text."""
    if body.count(b"[") + body.count(b"{") > max_depth and not _depth_ok(body, max_depth):
        raise BadJson(f"body is nested deeper than {max_depth} levels")

    def constant(name: str) -> Any:
        raise BadJson(f"body holds {name}, which is not JSON")

    def finite(text: str) -> float:
        number = float(text)
        if number in (float("inf"), float("-inf")):
            raise BadJson(f"body holds the number {text}, which is too large")
        return number

    try:
        value = json.loads(body, parse_constant=constant, parse_float=finite)
    except RecursionError:
        raise BadJson(f"body is nested deeper than {max_depth} levels") from None
    except BadJson:
        raise
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadJson(f"body is not JSON: {exc}") from None
    try:
        check_text(value, "body")
    except BadText as exc:
        raise BadJson(str(exc)) from None
    return value
