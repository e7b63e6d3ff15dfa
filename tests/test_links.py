"""Signed links: the hosted-invoice link is stable per invoice, and links sent in its earlier format
still open the page."""

from __future__ import annotations

import hashlib

import pytest
from itsdangerous import URLSafeTimedSerializer

from core.links import (
    INVOICE_SALT,
    ApprovalToken,
    LinkError,
    sign_approval,
    sign_invoice_page,
    verify_invoice_page,
)

SECRET = "a-test-secret-key"


def test_every_email_about_an_invoice_links_the_same_page() -> None:
    first = sign_invoice_page(SECRET, "inv-1")
    assert sign_invoice_page(SECRET, "inv-1") == first
    assert sign_invoice_page(SECRET, "inv-2") != first
    assert verify_invoice_page(SECRET, first) == "inv-1"


def test_a_link_sent_in_the_earlier_timestamped_format_still_opens() -> None:
    old = URLSafeTimedSerializer(
        SECRET, salt=INVOICE_SALT, signer_kwargs={"digest_method": hashlib.sha256}
    ).dumps({"v": "inv-9"})
    assert verify_invoice_page(SECRET, old) == "inv-9"


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # one character changed
        lambda t: t.split(".")[0],  # signature cut off
    ],
)
def test_a_tampered_link_is_refused(mangle) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(LinkError) as err:
        verify_invoice_page(SECRET, mangle(sign_invoice_page(SECRET, "inv-1")))
    assert err.value.reason == "tampered"


def test_links_signed_for_another_purpose_or_key_are_refused() -> None:
    with pytest.raises(LinkError):
        verify_invoice_page("another-key", sign_invoice_page(SECRET, "inv-1"))
    approval = sign_approval(
        SECRET, ApprovalToken("inv-1", revision=1, step=0, approver="a@firm.test", token_id="t")
    )
    with pytest.raises(LinkError):
        verify_invoice_page(SECRET, approval)
