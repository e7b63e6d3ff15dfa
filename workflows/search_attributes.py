"""Custom search attributes operators filter on in the Temporal UI.

No PII here: search attributes are stored unencrypted in the visibility store (customer *ids*, never
names or emails; the name goes in the memo, which the payload codec covers).
"""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

INVOICE_STATUS = SearchAttributeKey.for_keyword("InvoiceStatus")
CUSTOMER_ID = SearchAttributeKey.for_keyword("CustomerId")
INVOICE_NUMBER = SearchAttributeKey.for_keyword("InvoiceNumber")
AMOUNT_DUE = SearchAttributeKey.for_float("AmountDue")
DUE_DATE = SearchAttributeKey.for_datetime("DueDate")
CURRENCY = SearchAttributeKey.for_keyword("Currency")
APPROVAL_STEP = SearchAttributeKey.for_keyword("ApprovalStep")  # "1/2" while pending approval

ALL = (INVOICE_STATUS, CUSTOMER_ID, INVOICE_NUMBER, AMOUNT_DUE, DUE_DATE, CURRENCY, APPROVAL_STEP)

# Names as the CLI (`--search-attribute Name=Type`) and docker-compose spell the types.
CLI_TYPES = {
    "InvoiceStatus": "Keyword",
    "CustomerId": "Keyword",
    "InvoiceNumber": "Keyword",
    "AmountDue": "Double",
    "DueDate": "Datetime",
    "Currency": "Keyword",
    "ApprovalStep": "Keyword",
}
