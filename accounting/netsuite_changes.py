"""What NetSuite's books tell us: customer payments changed since a cursor, read with SuiteQL.

NetSuite sends no webhooks for this, so the poller asks. ``POST /services/rest/query/v1/suiteql`` with
``Prefer: transient`` and ``{"q": ...}`` (Oracle: "Using SuiteQL with SuiteTalk REST Web Services",
section_158394344595), paged with ``limit``/``offset`` and answered as ``{items, hasMore, offset, count,
totalResults, links}`` ("Collection Paging", section_156414087576).

The query joins customer payments (``transaction.type = 'CustPymt'``) to the invoices they settle through
``NextTransactionLineLink`` (``previousdoc`` = the invoice, ``nextdoc`` = the payment, ``foreignamount``
in the transaction currency: the link table as third-party SuiteQL references describe it; Oracle's
Records Catalog itself was not in the searchable documentation). Dates are formatted in the query
(``TO_CHAR``), so neither the account's date preference nor its time zone leaks into parsing.

The cursor is the provider's own ``lastmodifieddate`` (to the second) of the newest payment seen, plus
the rows (id and a digest of their values) seen at that second: the next poll asks ``>=`` and drops
those, so a payment is reported once and a change in the same second is not lost. A first poll looks
back ``LOOKBACK_DAYS``. A voided payment comes back as ``deleted`` (a difference for an operator, never
applied silently). Deleted records (SuiteQL ``DeletedRecord``) are not read yet.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import date
from typing import TYPE_CHECKING, Any

from accounting.changes import ChangeSet, RemotePayment
from accounting.jsonnum import to_decimal
from accounting.netsuite_http import SUITEQL

if TYPE_CHECKING:
    from accounting.netsuite_http import NetSuiteHttp

LOOKBACK_DAYS = 1
PAGE = 1000
TIMESTAMP = "YYYY-MM-DD HH24:MI:SS"
_COLUMNS = (
    "SELECT t.id AS id, t.externalid AS externalid, t.memo AS memo, t.voided AS voided, "
    "t.currency AS currency, TO_CHAR(t.trandate, 'YYYY-MM-DD') AS trandate, "
    f"TO_CHAR(t.lastmodifieddate, '{TIMESTAMP}') AS lastmodified, "
    "l.previousdoc AS invoice, l.foreignamount AS amount "
    "FROM transaction t JOIN NextTransactionLineLink l ON l.nextdoc = t.id "
    "WHERE t.type = 'CustPymt' AND l.linktype = 'Payment' AND "
)


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _integer(value: str) -> str:
    if not value.isdigit():
        raise ValueError(f"not a NetSuite internal id: {value!r}")
    return value


def _token(row: dict[str, Any]) -> str:
    """A row as the cursor remembers it: its payment id and a digest of what it said, so a change made
    within the same second as the last report (a void, an amount) is still reported."""
    digest = hashlib.sha256(repr(sorted(row.items())).encode()).hexdigest()[:8]
    return f"{row['id']}.{digest}"


def parse_cursor(cursor: str | None) -> tuple[str | None, frozenset[str]]:
    """``"2026-12-01 20:10:05|101.ab12cd34,..."`` → (timestamp, rows already reported at it)."""
    if not cursor:
        return None, frozenset()
    stamp, _, ids = cursor.partition("|")
    return stamp, frozenset(i for i in ids.split(",") if i)


class NetSuiteChangeFeed:
    """The ``accounting.changes.ChangeFeed`` half of ``NetSuiteConnector``."""

    http: NetSuiteHttp

    async def currency_code(self, currency_id: str) -> str:  # provided by the connector
        raise NotImplementedError

    async def suiteql(self, query: str) -> list[dict[str, Any]]:
        """Every row of one SuiteQL query, page by page."""
        rows: list[dict[str, Any]] = []
        offset = 0
        while True:
            reply = await self.http.call(
                "POST",
                SUITEQL,
                params={"limit": str(PAGE), "offset": str(offset)},
                body={"q": query},
                headers={"Prefer": "transient"},
            )
            page = reply.body or {}
            items = page.get("items") or []
            rows += [{k: v for k, v in item.items() if k != "links"} for item in items]
            if not page.get("hasMore") or not items:
                return rows
            offset += len(items)

    async def _payments(self, rows: Iterable[dict[str, Any]]) -> list[RemotePayment]:
        by_payment: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            by_payment.setdefault(str(row["id"]), []).append(row)
        payments: list[RemotePayment] = []
        for payment_id, applications in by_payment.items():
            for row in applications:
                external = payment_id if len(applications) == 1 else f"{payment_id}:{row['invoice']}"
                payments.append(
                    RemotePayment(
                        external_id=external,
                        invoice_external_id=str(row["invoice"]),
                        amount=abs(to_decimal(row.get("amount") or 0)),
                        date=date.fromisoformat(str(row["trandate"])),
                        currency=await self.currency_code(str(row.get("currency") or "")),
                        reference=str(row.get("memo") or ""),
                        deleted=str(row.get("voided") or "F").upper() == "T",
                    )
                )
        return payments

    async def changes_since(self, cursor: str | None) -> ChangeSet:
        stamp, seen = parse_cursor(cursor)
        since = (
            f"t.lastmodifieddate >= TO_TIMESTAMP({_literal(stamp)}, '{TIMESTAMP}')"
            if stamp
            else f"t.lastmodifieddate >= SYSDATE - {LOOKBACK_DAYS}"
        )
        rows = await self.suiteql(_COLUMNS + since + " ORDER BY t.lastmodifieddate, t.id")
        fresh = [r for r in rows if not (str(r["lastmodified"]) == stamp and _token(r) in seen)]
        if rows:
            newest = max(str(r["lastmodified"]) for r in rows)
            at_newest = {_token(r) for r in rows if str(r["lastmodified"]) == newest}
            if newest == stamp:
                at_newest |= seen
            next_cursor = f"{newest}|{','.join(sorted(at_newest))}"
        else:
            next_cursor = cursor or ""
        payments = await self._payments(fresh)
        invoices = tuple(dict.fromkeys(p.invoice_external_id for p in payments))
        return ChangeSet(
            payments=tuple(payments),
            invoice_external_ids=invoices,
            next_cursor=next_cursor,
            detail={"rows": str(len(rows))},
        )

    async def fetch_payment(self, external_id: str) -> tuple[RemotePayment, ...]:
        payment_id = external_id.partition(":")[0]
        rows = await self.suiteql(_COLUMNS + f"t.id = {_integer(payment_id)} ORDER BY t.id")
        return tuple(await self._payments(rows))

    async def payments_applied_to(self, invoice_id: str) -> list[RemotePayment]:
        """The customer payments applied to one invoice (what ``fetch_invoice`` reports as paid)."""
        rows = await self.suiteql(
            _COLUMNS + f"l.previousdoc = {_integer(invoice_id)} ORDER BY t.lastmodifieddate, t.id"
        )
        return [p for p in await self._payments(rows) if p.invoice_external_id == invoice_id]
