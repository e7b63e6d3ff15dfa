"""The SuiteQL the NetSuite stand-in understands: currencies, and customer payments joined to the invoices
they settle through ``NextTransactionLineLink``, filtered by modification time (``TO_TIMESTAMP`` or
``SYSDATE - n``), payment id or invoice id. Anything else is refused the way NetSuite refuses a query it
cannot run (400 ``INVALID_PARAMETER``) [K], so the connector cannot drift into queries nobody checked.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from standins.accounting.netsuite_books import Books, Refused

_TS = "%Y-%m-%d %H:%M:%S"
_PAYMENTS = re.compile(
    r"^select (?P<columns>.+) from transaction t join nexttransactionlinelink l on l\.nextdoc = t\.id "
    r"where t\.type = 'custpymt' and l\.linktype = 'payment' and (?P<where>.+?) "
    r"order by (?P<order>[\w., ]+)$"
)
_SINCE_TS = re.compile(
    r"^t\.lastmodifieddate (?P<op>>=|>) to_timestamp\('(?P<ts>[\d: -]+)', 'yyyy-mm-dd hh24:mi:ss'\)$"
)
_SINCE_SYSDATE = re.compile(r"^t\.lastmodifieddate >= sysdate - (?P<days>\d+)$")
_BY_ID = re.compile(r"^(?P<column>t\.id|l\.previousdoc) = (?P<id>\d+)$")


def _bad(detail: str) -> Refused:
    return Refused(
        400, "INVALID_PARAMETER", f"Invalid search query. Detailed unprocessed description follows. {detail}"
    )


Row = dict[str, Any]


def _payment_rows(books: Books) -> list[tuple[dict[str, Any], Row]]:
    """(payment, row) per application of a customer payment (a voided one keeps one row, amount 0)."""
    rows = []
    for payment in books.records["customerpayment"].values():
        applied = books.applied_from("customerpayment", str(payment["id"])) or payment.get("_was", [])
        for application in applied:
            rows.append((payment, {"invoice": application.invoice_id, "amount": application.amount}))
    return rows


_EXPRESSIONS: dict[str, Callable[[dict[str, Any], Row], Any]] = {
    "t.id": lambda p, r: str(p["id"]),
    "t.externalid": lambda p, r: p.get("externalId"),
    "t.tranid": lambda p, r: p["tranId"],
    "t.memo": lambda p, r: p.get("memo") or None,
    "t.voided": lambda p, r: "T" if p.get("voided") else "F",
    "t.currency": lambda p, r: str(p["currency"]),
    "to_char(t.trandate, 'yyyy-mm-dd')": lambda p, r: str(p["tranDate"]),
    "to_char(t.lastmodifieddate, 'yyyy-mm-dd hh24:mi:ss')": lambda p, r: p["lastModifiedDate"].strftime(_TS),
    "l.previousdoc": lambda p, r: r["invoice"],
    "l.foreignamount": lambda p, r: str(r["amount"]),
}


def _columns(text: str) -> list[tuple[str, str]]:
    columns = []
    for part in re.split(r",(?![^(]*\))", text):
        expression, _, alias = part.strip().rpartition(" as ")
        if not expression or expression not in _EXPRESSIONS:
            raise _bad(f"Unknown identifier or expression: {part.strip()}")
        columns.append((expression, alias.strip()))
    return columns


def _condition(text: str, now: datetime) -> Callable[[dict[str, Any], Row], bool]:
    if match := _SINCE_TS.match(text):
        since = datetime.strptime(match["ts"], _TS)
        if match["op"] == ">":
            return lambda p, r: p["lastModifiedDate"] > since
        return lambda p, r: p["lastModifiedDate"] >= since
    if match := _SINCE_SYSDATE.match(text):
        since = now - timedelta(days=int(match["days"]))
        return lambda p, r: p["lastModifiedDate"] >= since
    if match := _BY_ID.match(text):
        wanted = match["id"]
        if match["column"] == "t.id":
            return lambda p, r: str(p["id"]) == wanted
        return lambda p, r: r["invoice"] == wanted
    raise _bad(f"Unsupported condition: {text}")


def run(books: Books, query: str) -> list[Row]:
    """Every row of one query, in its order, with NetSuite's habit of leaving null columns out."""
    normal = re.sub(r"\s+", " ", query.strip()).lower()
    if normal == "select id, symbol from currency":
        return [{"id": cid, "symbol": symbol} for cid, (symbol, _) in books.currencies.items()]
    match = _PAYMENTS.match(normal)
    if match is None:
        raise _bad(f"Unsupported query: {query[:200]}")
    columns = _columns(match["columns"])
    keep = _condition(match["where"], books.now())
    rows = [(p, r) for p, r in _payment_rows(books) if keep(p, r)]
    rows.sort(key=lambda pr: (pr[0]["lastModifiedDate"], int(pr[0]["id"])))
    out = []
    for payment, row in rows:
        values = {alias: _EXPRESSIONS[expression](payment, row) for expression, alias in columns}
        out.append({k: v for k, v in values.items() if v is not None})
    return out
