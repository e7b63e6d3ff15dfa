"""Field types every request body shares: money as decimal strings, currencies, time zones, payment
terms, reminder offsets, and the strict base model (unknown fields refused)."""

from __future__ import annotations

from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    field_validator,
)

from api.validation import text_fields_validator
from billing.currency import normalize_currency
from billing.reminders import parse_offsets
from billing.terms import parse_terms


def _currency(value: str) -> str:
    return normalize_currency(value)


def _timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown IANA timezone {value!r} (e.g. 'Europe/Berlin', 'America/New_York')"
        ) from None
    return value


def _terms(value: str) -> str:
    return parse_terms(value).code


def _offsets(value: list[int]) -> list[int]:
    return list(parse_offsets(",".join(str(v) for v in value)))


Currency = Annotated[str, AfterValidator(_currency)]
Timezone = Annotated[str, AfterValidator(_timezone)]
Terms = Annotated[str, AfterValidator(_terms)]
Offsets = Annotated[list[int], AfterValidator(_offsets)]


class Strict(BaseModel):
    """Request bodies: unknown fields refused, text storable (no NUL, no lone surrogate) in every field."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _storable_text(cls, value: Any) -> Any:
        return text_fields_validator(value)
