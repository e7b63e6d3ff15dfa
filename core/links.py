"""Signed one-click approval links.

A token binds invoice, revision, step and approver, carries a token id derived from the email that
delivered it (so a retried email sends the same link), and expires. It is signed with
``INVOICEFLOW_SECRET_KEY`` (HMAC-SHA256, salt per purpose). Verifying says *which* way a link is bad,
so the page can tell the person: tampered, expired. Used and superseded are decided later, against the
database and the workflow.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeSerializer, URLSafeTimedSerializer

APPROVAL_SALT = "invoiceflow.approval-link.v1"


@dataclass(frozen=True)
class ApprovalToken:
    invoice_id: str
    revision: int
    step: int
    approver: str
    token_id: str


class LinkError(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason  # tampered | expired


def _serializer(secret: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt=APPROVAL_SALT, signer_kwargs={"digest_method": hashlib.sha256})


def token_id_for(email_key: str) -> str:
    return hashlib.sha256(email_key.encode()).hexdigest()[:32]


def sign_approval(secret: str, token: ApprovalToken) -> str:
    return _serializer(secret).dumps(
        {
            "i": token.invoice_id,
            "r": token.revision,
            "s": token.step,
            "a": token.approver,
            "j": token.token_id,
        }
    )


def verify_approval(secret: str, value: str, *, max_age_s: int) -> ApprovalToken:
    try:
        data = _serializer(secret).loads(value, max_age=max_age_s)
    except SignatureExpired:
        raise LinkError("expired", "This approval link has expired.") from None
    except BadSignature:
        raise LinkError("tampered", "This approval link is not valid.") from None
    try:
        return ApprovalToken(
            invoice_id=str(data["i"]),
            revision=int(data["r"]),
            step=int(data["s"]),
            approver=str(data["a"]),
            token_id=str(data["j"]),
        )
    except (KeyError, TypeError, ValueError):
        raise LinkError("tampered", "This approval link is not valid.") from None


ESTIMATE_SALT = "invoiceflow.estimate-link.v1"


def _estimate_serializer(secret: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt=ESTIMATE_SALT, signer_kwargs={"digest_method": hashlib.sha256})


def sign_estimate(secret: str, estimate_id: str) -> str:
    """The client's link to a hosted estimate page. Its lifetime is the estimate's validity, which the
    workflow enforces; the signature only proves the link is ours."""
    return _estimate_serializer(secret).dumps({"e": estimate_id})


def verify_estimate(secret: str, value: str, *, max_age_s: int) -> str:
    try:
        data = _estimate_serializer(secret).loads(value, max_age=max_age_s)
        return str(data["e"])
    except SignatureExpired:
        raise LinkError("expired", "This estimate link has expired.") from None
    except (BadSignature, KeyError, TypeError):
        raise LinkError("tampered", "This estimate link is not valid.") from None


INVOICE_SALT = "invoiceflow.invoice-page.v1"  # links sent before v2: timestamped, still honoured
INVOICE_PAGE_SALT = "invoiceflow.invoice-page.v2"


def _invoice_serializer(secret: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt=INVOICE_SALT, signer_kwargs={"digest_method": hashlib.sha256})


def _invoice_page_serializer(secret: str) -> URLSafeSerializer:
    return URLSafeSerializer(secret, salt=INVOICE_PAGE_SALT, signer_kwargs={"digest_method": hashlib.sha256})


def sign_invoice_page(secret: str, invoice_id: str) -> str:
    """The client's link to the hosted invoice page: unguessable (signed), and it does not expire, since
    an invoice is looked up for years. It carries no timestamp, so every email about one invoice (the
    invoice, each reminder, the receipt) links the same page. It only shows the invoice; it changes
    nothing."""
    return _invoice_page_serializer(secret).dumps({"v": invoice_id})


def verify_invoice_page(secret: str, value: str) -> str:
    for serializer in (_invoice_page_serializer(secret), _invoice_serializer(secret)):
        try:
            return str(serializer.loads(value)["v"])
        except (BadSignature, KeyError, TypeError):
            continue
    raise LinkError("tampered", "This invoice link is not valid.")


def invoice_page_id(secret_key: str, token: str) -> uuid.UUID | None:
    """The invoice a hosted-page token names, or None for a token that is not ours."""
    try:
        return uuid.UUID(verify_invoice_page(secret_key, token))
    except (LinkError, ValueError):
        return None


CHANGE_ORDER_SALT = "invoiceflow.change-order-approval.v1"


@dataclass(frozen=True)
class ChangeOrderToken:
    """A change order approver's link: the order, the step of its chain, the approver, the token id."""

    change_order_id: str
    step: int
    approver: str
    token_id: str


def _change_order_serializer(secret: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(
        secret, salt=CHANGE_ORDER_SALT, signer_kwargs={"digest_method": hashlib.sha256}
    )


def sign_change_order(secret: str, token: ChangeOrderToken) -> str:
    return _change_order_serializer(secret).dumps(
        {"c": token.change_order_id, "s": token.step, "a": token.approver, "j": token.token_id}
    )


def verify_change_order(secret: str, value: str, *, max_age_s: int) -> ChangeOrderToken:
    """Like ``verify_approval`` (tampered or expired), under a salt of its own: an invoice's link never
    decides a change order, nor the other way round."""
    try:
        data = _change_order_serializer(secret).loads(value, max_age=max_age_s)
    except SignatureExpired:
        raise LinkError("expired", "This approval link has expired.") from None
    except BadSignature:
        raise LinkError("tampered", "This approval link is not valid.") from None
    try:
        return ChangeOrderToken(
            change_order_id=str(data["c"]),
            step=int(data["s"]),
            approver=str(data["a"]),
            token_id=str(data["j"]),
        )
    except (KeyError, TypeError, ValueError):
        raise LinkError("tampered", "This approval link is not valid.") from None
