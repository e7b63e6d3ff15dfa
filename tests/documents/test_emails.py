"""Email rendering: every kind, reminder tone, escaping, missing keys, overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from documents.rendering import EMAIL_CONTEXT_KEYS, EMAIL_KINDS, RenderedEmail, RenderError, render_email

NUMBER = "INV-2026-000123"
CONTEXT: dict[str, object] = {
    "customer_name": "Globex Corporation",
    "seller_name": "Northwind Software GmbH",
    "number": NUMBER,
    "total": "1,190.00 EUR",
    "amount_due": "1,190.00 EUR",
    "amount_paid": "0.00 EUR",
    "due_date": "2026-12-25",
    "currency": "EUR",
    "pay_url": "https://pay.northwind.example/i/7f3a",
    "offset_days": 7,
    "owner_name": "Dana Account-Owner",
}


def reminder(offset: int | None) -> RenderedEmail:
    return render_email("reminder", {**CONTEXT, "offset_days": offset})


@pytest.mark.parametrize("kind", EMAIL_KINDS)
def test_each_kind_renders_and_names_the_invoice(kind: str) -> None:
    email = render_email(kind, CONTEXT)
    assert NUMBER in email.subject
    assert "\n" not in email.subject and email.subject == email.subject.strip()
    assert NUMBER in email.text and NUMBER in email.html
    assert email.html.lstrip().startswith("<!DOCTYPE html>") and email.html.rstrip().endswith("</html>")
    assert "<" not in email.text  # plain text, no markup
    assert email.text.endswith("\n") and "\n\n\n" not in email.text


def test_kinds_say_what_they_are_about() -> None:
    invoice = render_email("invoice", CONTEXT)
    assert "attached" in invoice.text and "1,190.00 EUR" in invoice.subject
    assert CONTEXT["pay_url"] in invoice.text and f'href="{CONTEXT["pay_url"]}"' in invoice.html

    escalation = render_email("escalation", {**CONTEXT, "offset_days": 21})
    assert "Dana Account-Owner" in escalation.text and "Globex Corporation" in escalation.subject
    assert "21 days overdue" in escalation.subject and "follow up" in escalation.text

    receipt = render_email(
        "payment_receipt", {**CONTEXT, "amount_paid": "1,190.00 EUR", "amount_due": "0.00 EUR"}
    )
    assert "received your payment" in receipt.text and "Thank you" in receipt.text
    assert "1,190.00 EUR" in receipt.text and "0.00 EUR" in receipt.html


def test_reminder_tone_follows_the_due_date() -> None:
    before, today, overdue = reminder(-3), reminder(0), reminder(14)
    assert len({before.subject, today.subject, overdue.subject}) == 3
    assert len({before.text, today.text, overdue.text}) == 3
    assert len({before.html, today.html, overdue.html}) == 3

    assert before.subject == f"Reminder: invoice {NUMBER} is due on 2026-12-25 (in 3 days)"
    assert "friendly reminder" in before.text and "in 3 days" in before.text and "overdue" not in before.text

    assert today.subject == f"Invoice {NUMBER} is due today"
    assert "due today" in today.text and "overdue" not in today.text

    assert overdue.subject == f"Overdue: invoice {NUMBER} was due on 2026-12-25 (14 days ago)"
    assert "14 days overdue" in overdue.text and "friendly" not in overdue.text
    assert "Please arrange payment" in overdue.text


def test_reminder_counts_days_in_words() -> None:
    assert "in 1 day)" in reminder(-1).subject
    assert "(1 day ago)" in reminder(1).subject
    assert "1 day overdue" in reminder(1).text


def test_reminder_without_offset_is_neutral() -> None:
    email = render_email("reminder", {k: v for k, v in CONTEXT.items() if k != "offset_days"})
    assert email.subject == f"Reminder: invoice {NUMBER} is due on 2026-12-25"
    assert "overdue" not in email.text and "today" not in email.text


def test_offset_days_accepts_numeric_strings_and_refuses_garbage() -> None:
    assert reminder(14).subject == render_email("reminder", {**CONTEXT, "offset_days": "14"}).subject
    with pytest.raises(RenderError, match="offset_days"):
        render_email("reminder", {**CONTEXT, "offset_days": "soon"})


@pytest.mark.parametrize("kind", EMAIL_KINDS)
def test_missing_and_none_keys_render_empty(kind: str) -> None:
    for context in ({"number": NUMBER}, {key: None for key in EMAIL_CONTEXT_KEYS} | {"number": NUMBER}):
        email = render_email(kind, context)
        for part in (email.subject, email.text, email.html):
            assert "None" not in part and "Undefined" not in part
        assert NUMBER in email.subject


def test_unknown_keys_in_an_override_render_empty(tmp_path: Path) -> None:
    (tmp_path / "email").mkdir()
    (tmp_path / "email" / "invoice.txt").write_text(
        "Dear {{ contact.first_name }}{{ nickname }}, see {{ number }}."
    )
    assert render_email("invoice", CONTEXT, tmp_path).text == f"Dear , see {NUMBER}.\n"


def test_html_is_escaped_and_text_is_not() -> None:
    context = {**CONTEXT, "customer_name": "Smith & <Sons>", "seller_name": "<script>x()</script>"}
    email = render_email("invoice", context)
    assert "Smith &amp; &lt;Sons&gt;" in email.html and "Smith & <Sons>" not in email.html
    assert "&lt;script&gt;" in email.html and "<script>" not in email.html
    assert "Hello Smith & <Sons>," in email.text
    assert "<script>x()</script>" in email.subject


def test_subject_cannot_carry_extra_headers() -> None:
    email = render_email("escalation", {**CONTEXT, "customer_name": "Globex\r\nBcc: victim@example.com"})
    assert "\n" not in email.subject and "\r" not in email.subject


def test_only_http_links_become_links() -> None:
    email = render_email("invoice", {**CONTEXT, "pay_url": "javascript:alert(1)"})
    assert 'href="javascript' not in email.html


def test_user_folder_overrides_one_email_file(tmp_path: Path) -> None:
    (tmp_path / "email").mkdir()
    (tmp_path / "email" / "reminder.subject.txt").write_text("Psst, {{ number }}")
    email = render_email("reminder", {**CONTEXT, "offset_days": 14}, tmp_path)
    assert email.subject == f"Psst, {NUMBER}"
    assert "14 days overdue" in email.text  # built-in body still used
    assert render_email("invoice", CONTEXT, tmp_path).subject == render_email("invoice", CONTEXT).subject


def test_override_html_may_extend_the_builtin_layout(tmp_path: Path) -> None:
    (tmp_path / "email").mkdir()
    (tmp_path / "email" / "invoice.html").write_text(
        '{% extends "email/_layout.html" %}'
        "{% block body %}<p>Custom {{ number }} for {{ customer_name }}</p>{% endblock %}"
    )
    html = render_email("invoice", {**CONTEXT, "customer_name": "A & B"}, tmp_path).html
    assert f"<p>Custom {NUMBER} for A &amp; B</p>" in html and "Northwind Software GmbH" in html


def test_unknown_kind_and_broken_template_are_render_errors(tmp_path: Path) -> None:
    with pytest.raises(RenderError, match="unknown email kind"):
        render_email("invoice_v2", CONTEXT)
    (tmp_path / "email").mkdir()
    (tmp_path / "email" / "invoice.txt").write_text("{% if %}")
    with pytest.raises(RenderError, match=r"email/invoice\.txt"):
        render_email("invoice", CONTEXT, tmp_path)


def test_credit_note_email_names_both_documents_and_the_reason() -> None:
    context = {
        **CONTEXT,
        "credit_note_number": "CN-2026-000007",
        "credit_note_total": "238.00 EUR",
        "reason": "Two days <not> delivered",
        "amount_due": "952.00 EUR",
    }
    email = render_email("credit_note", context)
    assert (
        email.subject
        == f"Credit note CN-2026-000007 for invoice {NUMBER} from Northwind Software GmbH: 238.00 EUR"
    )
    assert "Reason: Two days <not> delivered" in email.text and "952.00 EUR" in email.text
    assert "Two days &lt;not&gt; delivered" in email.html and "CN-2026-000007" in email.html
