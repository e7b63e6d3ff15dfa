"""JSON with exact decimal numbers, for provider APIs that take money as JSON numbers (Xero, QBO).

``json.dumps`` cannot write a ``Decimal`` as a number (only via float, which is exactly what must not
happen to money), and ``json.loads`` turns 0.1 into a float. These two functions keep every number a
``Decimal`` end to end: 150.10 goes on the wire as ``150.10`` and comes back as ``Decimal("150.10")``.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any


def _render(value: Any, out: list[str]) -> None:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"cannot send {value} as a JSON number")
        out.append(format(value, "f"))  # never exponent notation: 1E+2 → "100"
    elif isinstance(value, float):
        raise TypeError("floats are not money: pass a Decimal")
    elif isinstance(value, dict):
        out.append("{")
        for index, (key, item) in enumerate(value.items()):
            if index:
                out.append(",")
            out.append(json.dumps(str(key)))
            out.append(":")
            _render(item, out)
        out.append("}")
    elif isinstance(value, (list, tuple)):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _render(item, out)
        out.append("]")
    else:  # str, int, bool, None
        out.append(json.dumps(value))


def dumps(value: Any) -> bytes:
    """UTF-8 JSON where every ``Decimal`` is an exact JSON number; floats are refused."""
    out: list[str] = []
    _render(value, out)
    return "".join(out).encode()


def loads(data: bytes | str) -> Any:
    """Parse JSON keeping every fractional number a ``Decimal`` (integers stay ``int``)."""
    return json.loads(data, parse_float=Decimal)


def to_decimal(value: Any) -> Decimal:
    """A number from a provider body (int, Decimal, or a decimal string such as FreshBooks sends)."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"expected a number, got {value!r}")
    if isinstance(value, float):
        raise TypeError("floats are not money: parse the body with accounting.jsonnum.loads")
    if isinstance(value, (int, Decimal)):
        return Decimal(value)
    return Decimal(str(value).strip())
