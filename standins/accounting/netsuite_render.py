"""Records of the NetSuite stand-in as REST web services return them: references as ``{"id", "refName"}``,
sublists as links unless ``expandSubResources=true``, then ``{"items", "count", "hasMore", ...}``."""

from __future__ import annotations

from typing import Any

from standins.accounting.netsuite_books import Books

RECORD = "/services/rest/record/v1"


def _links(kind: str, internal: str, sub: str = "") -> list[dict[str, str]]:
    return [{"rel": "self", "href": f"{RECORD}/{kind}/{internal}{'/' + sub if sub else ''}"}]


def _sublist(kind: str, internal: str, name: str, rows: list[dict[str, Any]], expand: bool) -> dict[str, Any]:
    if not expand:
        return {"links": _links(kind, internal, name)}
    return {
        "links": _links(kind, internal, name),
        "items": rows,
        "count": len(rows),
        "hasMore": False,
        "offset": 0,
        "totalResults": len(rows),
    }


def _ref(books: Books, kind: str, internal: str) -> dict[str, str] | None:
    if not internal:
        return None
    if kind == "currency":
        return {"id": internal, "refName": books.currencies[internal][1]}
    if kind == "customer":
        return {"id": internal, "refName": books.records["customer"][internal]["companyName"]}
    if kind == "item":
        return {"id": internal, "refName": books.items.get(internal, internal)}
    return {"id": internal}


def _stamp(record: dict[str, Any], name: str) -> str:
    return record[name].isoformat() + "Z"


def _lines(books: Books, record: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "links": [],
            "line": line["line"],
            "item": _ref(books, "item", line["item"]),
            "description": line["description"],
            "quantity": line["quantity"],
            "rate": line["rate"],
            "amount": line["amount"],
            **({"taxCode": {"id": line["taxCode"]}} if line["taxCode"] else {}),
            "taxRate1": line["taxRate1"],
            "tax1Amt": line["tax1Amt"],
        }
        for line in record["lines"]
    ]


def _applied(books: Books, kind: str, internal: str) -> list[dict[str, Any]]:
    rows = []
    for application in books.applied_from(kind, internal):
        invoice = books.records["invoice"][application.invoice_id]
        rows.append(
            {
                "links": [],
                "doc": {"id": application.invoice_id},
                "apply": True,
                "amount": application.amount,
                "refNum": invoice["tranId"],
                "type": "Invoice",
                "total": invoice["total"],
                "due": books.remaining(application.invoice_id),
            }
        )
    return rows


def render(books: Books, kind: str, record: dict[str, Any], *, expand: bool) -> dict[str, Any]:
    internal = str(record["id"])
    out: dict[str, Any] = {"links": _links(kind, internal), "id": internal}
    if record.get("externalId"):
        out["externalId"] = record["externalId"]
    out["lastModifiedDate"] = _stamp(record, "lastModifiedDate")
    out["createdDate"] = _stamp(record, "createdDate")
    if kind == "customer":
        out.update({k: record[k] for k in ("entityId", "companyName", "email", "isPerson") if k in record})
        out["currency"] = _ref(books, "currency", record["currency"])
        return out
    if kind == "customerpayment":
        applied = sum((a.amount for a in books.applied_from(kind, internal)), record["payment"] * 0)
        out.update(
            {
                "tranId": record["tranId"],
                "tranDate": record["tranDate"],
                "customer": _ref(books, "customer", record["customer"]),
                "currency": _ref(books, "currency", record["currency"]),
                "payment": record["payment"],
                "memo": record["memo"],
                "applied": applied,
                "unapplied": record["payment"] - applied,
                "voided": record["voided"],
                "status": {
                    "id": "voided" if record["voided"] else "notDeposited",
                    "refName": "Voided" if record["voided"] else "Not Deposited",
                },
                "apply": _sublist(kind, internal, "apply", _applied(books, kind, internal), expand),
            }
        )
        if record.get("account"):
            out["account"] = {"id": record["account"]}
        return out
    out.update(
        {
            "tranId": record["tranId"],
            "tranDate": record["tranDate"],
            "entity": _ref(books, "customer", record["entity"]),
            "currency": _ref(books, "currency", record["currency"]),
            "memo": record["memo"],
            "subtotal": record["subtotal"],
            "taxTotal": record["taxTotal"],
            "total": record["total"],
            "item": _sublist(kind, internal, "item", _lines(books, record), expand),
        }
    )
    if kind == "invoice":
        remaining = books.remaining(internal)
        paid = remaining == 0 and record["total"] > 0
        out.update(
            {
                "dueDate": record["dueDate"],
                "amountPaid": record["total"] - remaining,
                "amountRemaining": remaining,
                "status": {
                    "id": "paidInFull" if paid else "open",
                    "refName": "Paid In Full" if paid else "Open",
                },
            }
        )
    else:
        applied = sum((a.amount for a in books.applied_from(kind, internal)), record["total"] * 0)
        out.update(
            {
                "applied": applied,
                "unapplied": record["total"] - applied,
                "amountRemaining": record["total"] - applied,
                "apply": _sublist(kind, internal, "apply", _applied(books, kind, internal), expand),
            }
        )
    return out
