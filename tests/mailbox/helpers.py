"""Builds the kind of message invoiceflow sends: text + HTML alternative and a PDF attachment."""

from __future__ import annotations

import os
import smtplib
from email.message import EmailMessage
from email.utils import make_msgid

# A tiny but real PDF, plus random bytes so a truncation/re-encoding bug cannot go unnoticed.
PDF_BYTES = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
    + os.urandom(4096)
    + b"\r\n.\r\n..\n\x00\xff"  # SMTP dot-stuffing and line-ending traps
)


def invoice_message(subject: str = "Invoice INV-0001", *, to: str = "client@example.com") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Billing <billing@invoiceflow.localhost>"
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="invoiceflow.localhost")
    message.set_content("Hello,\n\nplease find invoice INV-0001 attached.\n.\nA line with a dot above.\n")
    message.add_alternative("<p>Hello,</p><p>please find <b>INV-0001</b> attached.</p>", subtype="html")
    message.add_attachment(PDF_BYTES, maintype="application", subtype="pdf", filename="INV-0001.pdf")
    return message


def send(
    port: int,
    message: EmailMessage,
    *,
    mail_from: str = "billing@invoiceflow.localhost",
    rcpt_tos: tuple[str, ...] | list[str] = ("client@example.com",),
) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        refused = client.send_message(message, from_addr=mail_from, to_addrs=rcpt_tos)
        assert refused == {}
