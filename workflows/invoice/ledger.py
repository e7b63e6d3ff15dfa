"""What changes of money an invoice accepts: the checks behind the payment, refund, credit-note, void and
write-off Updates' validators (a rejected Update writes nothing to history). Where a payment is validated:
``LedgerRules._check_payment``, on the amount rule of ``billing.money``."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from billing.credits import CreditRefused, check_credit_amount
    from billing.errors import MoneyError
    from billing.payments import payment_amount, payment_currency
    from billing.status import FINAL_STATUSES
    from billing.totals import compute_totals, parse_lines
    from workflows.payloads import (
        CreditNoteInput,
        PaymentInput,
        RefundInput,
        UncollectibleInput,
        VoidInput,
    )

from workflows.invoice.base import InvoiceBase
from workflows.invoice.options import (
    OPEN_STATES,
)


class LedgerRules(InvoiceBase):
    def _check_payment(self, payment: PaymentInput) -> None:
        if self._issued is None:
            raise ValueError("invoice is not issued yet; payments are accepted once it is open")
        if self._status in FINAL_STATUSES:
            raise ValueError(f"invoice is {self._status}; it takes no more payments")
        if not payment.idempotency_key:
            raise ValueError("payment.idempotency_key is required")
        try:
            payment_amount(payment.amount, self._input.currency)
            payment_currency(payment.currency, self._input.currency)
        except MoneyError as exc:
            raise ValueError(str(exc)) from None

    def _check_void(self, request: VoidInput) -> None:
        if not request.reason.strip():
            raise ValueError("reason: say why the invoice is voided")
        if self._status in FINAL_STATUSES:
            raise ValueError(f"invoice is already {self._status}")
        if self._amount_paid > 0:
            raise ValueError(
                f"invoice has payments of {self._amount_paid} {self._input.currency}; "
                "refund them or issue a credit note instead of voiding"
            )
        if self._credited > 0:
            raise ValueError(
                f"invoice has credit notes for {self._credited} {self._input.currency}; "
                "credit the rest with a credit note instead of voiding"
            )

    def _check_uncollectible(self, request: UncollectibleInput) -> None:
        if self._status not in OPEN_STATES:
            raise ValueError(
                "only an open, overdue or partially paid invoice can be written off; this one is "
                f"{self._status}"
            )

    def _check_credit_note(self, request: CreditNoteInput) -> None:
        if self._issued is None or self._total is None:
            raise ValueError("invoice is not issued yet; credit notes are issued against issued invoices")
        if self._status not in OPEN_STATES:
            raise ValueError(
                f"invoice is {self._status}; credit notes are issued on open, overdue or partially paid "
                "invoices"
            )
        if not request.reason.strip():
            raise ValueError("reason: say why the invoice is credited")
        if not request.idempotency_key:
            raise ValueError("idempotency_key is required")
        if request.full == bool(request.lines):
            raise ValueError('give either "full": true or "lines", not both and not neither')
        try:
            amount = (
                self._total
                if request.full
                else compute_totals(parse_lines(request.lines), self._input.currency).total
            )
            check_credit_amount(
                amount,
                total=self._total,
                credited=self._credited,
                currency=self._input.currency,
                number=self._issued.number,
                full=request.full,
            )
        except (MoneyError, CreditRefused) as exc:
            raise ValueError(str(exc)) from None

    def _check_refund(self, refund: RefundInput) -> None:
        if self._issued is None or self._status not in OPEN_STATES:
            raise ValueError(
                f"invoice is {self._status}; only payments of an open invoice are refunded through it"
            )
        if not refund.idempotency_key:
            raise ValueError("idempotency_key is required")
        try:
            amount = payment_amount(refund.amount, self._input.currency)
        except MoneyError as exc:
            raise ValueError(str(exc)) from None
        if amount > self._amount_paid:
            raise ValueError(
                f"amount: {amount} {self._input.currency} is more than the {self._amount_paid} "
                "paid on this invoice"
            )
