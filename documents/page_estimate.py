"""How many pages the built-in ``invoice.html`` will take for a document, estimated without laying it out.

Only a guess for the first layout pass (``documents.page_count``): a right one saves xhtml2pdf's second
pass, a wrong one costs that pass and nothing more, so it never changes what the PDF says. The figures
are the built-in template's geometry (A4, its margins, font sizes and paddings, in points); for an
overriding template the guess is as good as it happens to be.
"""

from __future__ import annotations

import math

from documents.view import InvoiceDocument

#: A4 height less the @page margins (16 mm top, 24 mm bottom).
BODY_PT = 841.89 - 40 * 72 / 25.4
#: One 9 pt text line (line-height 1.3) and a line item's vertical cell padding.
TEXT_LINE_PT = 9 * 1.3
CELL_PADDING_PT = 8.0
#: The table header that repeats on every page.
TABLE_HEAD_PT = 8 * 1.3 + CELL_PADDING_PT
#: Characters of an average 9 pt Helvetica line in the description column (39 % of the frame).
DESCRIPTION_CHARS = 44


def _text_lines(text: str, chars: int) -> int:
    return sum(max(1, math.ceil(len(part) / chars)) for part in (text or "").split("\n")) or 1


def _header_pt(doc: InvoiceDocument) -> float:
    """Seller and title block, customer and facts block, the gap before the line items, their head."""
    seller_lines = (
        (doc.seller.address.count("\n") + 1 if doc.seller.address else 0)
        + bool(doc.seller.email)
        + bool(doc.seller.tax_id)
    )
    seller = 15 * 1.3 + 3 + seller_lines * 8.5 * 1.35
    title = 24 * 1.3 + 10 * 1.3 + 2 + (18 * 1.3 + 9 + 8 if doc.status_stamp else 0)
    head = max(seller, title) + 11.5 + 12
    customer_lines = (
        (doc.customer.address.count("\n") + 1 if doc.customer.address else 0)
        + bool(doc.customer.email)
        + bool(doc.customer.tax_id)
    )
    customer = 7 * 1.3 + 11.5 * 1.3 + 4 + customer_lines * TEXT_LINE_PT
    facts = 1 + sum(bool(x) for x in (doc.reference, doc.issue_date, doc.due_date, doc.terms, doc.currency))
    emphasised = any(total.emphasis for total in doc.totals)
    facts_pt = facts * (TEXT_LINE_PT + 3) + (14 * 1.3 + 10 + 9.5 if emphasised else 0)
    return head + max(customer, facts_pt) + 18 + TABLE_HEAD_PT


def _tail_pt(doc: InvoiceDocument) -> float:
    """Totals (kept on one page), payment link and notes."""
    totals = (
        8 + sum((11 * 1.3 if total.emphasis else TEXT_LINE_PT) + 4 for total in doc.totals)
        if doc.totals
        else 0
    )
    pay = 20 + 7 * 1.3 + 2 + 2 * TEXT_LINE_PT if doc.pay_url else 0
    notes = 20 + 7 * 1.3 + 2 + _text_lines(doc.notes, 90) * 8.5 * 1.3 if doc.notes else 0
    return totals + pay + notes


def estimated_pages(doc: InvoiceDocument) -> int:
    """Pages of ``doc`` in the built-in template: line items fill each page under the repeated table
    head, row by row (a row is never split), and the totals and what follows come after the last."""
    pages, free = 1, BODY_PT - _header_pt(doc)
    for line in doc.lines:
        row = CELL_PADDING_PT + TEXT_LINE_PT * _text_lines(line.description, DESCRIPTION_CHARS)
        if row > free and free < BODY_PT - TABLE_HEAD_PT:
            pages, free = pages + 1, BODY_PT - TABLE_HEAD_PT
        free -= row
    if _tail_pt(doc) > free:
        pages += 1
    return pages
