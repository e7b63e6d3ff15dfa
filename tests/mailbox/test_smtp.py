"""Real SMTP (smtplib) against the real aiosmtpd server run by DevMailbox."""

from __future__ import annotations

import re
import smtplib
import socket
import struct
from pathlib import Path

import pytest

from invoiceflow.mailbox import AcceptGate, DevMailbox, MailStore

from .helpers import PDF_BYTES, invoice_message, send


def test_message_with_pdf_is_stored_with_envelope(mailbox: DevMailbox) -> None:
    assert isinstance(mailbox.smtp_port, int) and mailbox.smtp_port > 0
    message = invoice_message("Invoice INV-0001 for ACME")
    # Envelope recipients include a Bcc-style address that is in no header.
    send(
        mailbox.smtp_port,
        message,
        mail_from="bounces@invoiceflow.localhost",
        rcpt_tos=["client@example.com", "hidden-bcc@example.com"],
    )

    [stored] = mailbox.store.list()
    assert stored.mail_from == "bounces@invoiceflow.localhost"
    assert stored.rcpt_tos == ["client@example.com", "hidden-bcc@example.com"]
    assert stored.subject == "Invoice INV-0001 for ACME"
    assert stored.message_id == message["Message-ID"]
    assert "hidden-bcc" not in stored.raw.decode()
    [attachment] = stored.attachments()
    assert attachment.filename == "INV-0001.pdf"
    assert attachment.content_type == "application/pdf"
    assert attachment.payload == PDF_BYTES
    assert "A line with a dot above." in (stored.text_body() or "")
    assert re.search(r"(?m)^\.$", stored.text_body() or ""), "dot-stuffing must be undone"

    # A fresh MailStore on the same folder sees the same thing.
    [again] = MailStore(mailbox.store.directory).list()
    assert (again.id, again.rcpt_tos, again.subject) == (stored.id, stored.rcpt_tos, stored.subject)
    assert again.attachments()[0].payload == PDF_BYTES


def test_several_messages_in_one_session_are_listed_newest_last(mailbox: DevMailbox) -> None:
    with smtplib.SMTP("127.0.0.1", mailbox.smtp_port, timeout=10) as client:
        for i in range(3):
            client.send_message(invoice_message(f"Reminder {i}"), "a@example.com", [f"c{i}@example.com"])
    assert [m.subject for m in mailbox.store.list()] == ["Reminder 0", "Reminder 1", "Reminder 2"]
    assert [m.rcpt_tos for m in mailbox.store.list()] == [[f"c{i}@example.com"] for i in range(3)]


def test_any_smtp_login_is_accepted(mailbox: DevMailbox) -> None:
    with smtplib.SMTP("127.0.0.1", mailbox.smtp_port, timeout=10) as client:
        client.login("someone", "whatever")
        client.send_message(invoice_message("With auth"), "a@example.com", ["b@example.com"])
    assert [m.subject for m in mailbox.store.list()] == ["With auth"]


def test_fixed_port_is_honoured(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with DevMailbox(tmp_path, smtp_port=port) as mb:
        assert mb.smtp_port == port
        send(port, invoice_message("fixed"), mail_from="a@x.example", rcpt_tos=["b@x.example"])
    assert [m.subject for m in MailStore(tmp_path).list()] == ["fixed"]


def _start_data_then_send(client: smtplib.SMTP, message_bytes: bytes) -> None:
    """Speak SMTP up to and including the end-of-data dot, without reading the final reply."""
    client.ehlo()
    assert client.mail("billing@invoiceflow.localhost")[0] == 250
    assert client.rcpt("client@example.com")[0] == 250
    client.putcmd("data")
    assert client.getreply()[0] == 354
    data = re.sub(rb"(?m)^\.", b"..", message_bytes.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    client.send(data + b".\r\n")


@pytest.mark.parametrize("how", ["close", "reset"])
def test_client_gone_before_250_means_nothing_stored(tmp_path: Path, how: str) -> None:
    gate = AcceptGate(held=True)
    with DevMailbox(tmp_path / "mail", before_accept=gate) as mb:
        client = smtplib.SMTP("127.0.0.1", mb.smtp_port, timeout=10)
        _start_data_then_send(client, invoice_message("Lost invoice").as_bytes())
        gate.wait_for_waiting(1)  # the server has the complete message and is holding its reply
        assert mb.store.list() == []

        assert client.sock is not None
        if how == "reset":
            client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()
        gate.wait_for_abandoned(1)  # the server noticed and cancelled the held handler

        gate.release()
        assert mb.store.list() == []

        # The mailbox keeps working: the next message goes through normally.
        send(mb.smtp_port, invoice_message("Second invoice"))
        assert gate.passed == 1
    assert [m.subject for m in MailStore(tmp_path / "mail").list()] == ["Second invoice"]


def test_held_message_is_stored_once_released(tmp_path: Path) -> None:
    gate = AcceptGate(held=True)
    with DevMailbox(tmp_path, before_accept=gate) as mb:
        client = smtplib.SMTP("127.0.0.1", mb.smtp_port, timeout=10)
        try:
            _start_data_then_send(client, invoice_message("Held").as_bytes())
            gate.wait_for_waiting(1)
            assert mb.store.list() == []
            gate.release()
            code, reply = client.getreply()
            assert (code, reply) == (250, b"Message accepted for delivery")
            assert [m.subject for m in mb.store.list()] == ["Held"]
        finally:
            client.close()


def test_before_accept_can_refuse(tmp_path: Path) -> None:
    gate = AcceptGate(reply="451 Try again later")
    with DevMailbox(tmp_path, before_accept=gate) as mb:
        with pytest.raises(smtplib.SMTPDataError) as refused:
            send(mb.smtp_port, invoice_message("Refused"))
        assert refused.value.smtp_code == 451
        assert mb.store.list() == []


def test_stopping_the_mailbox_while_a_message_is_held_discards_it(tmp_path: Path) -> None:
    gate = AcceptGate(held=True)
    mb = DevMailbox(tmp_path, before_accept=gate).start()
    client = smtplib.SMTP("127.0.0.1", mb.smtp_port, timeout=10)
    try:
        _start_data_then_send(client, invoice_message("Held at shutdown").as_bytes())
        gate.wait_for_waiting(1)
        mb.stop()
        gate.wait_for_abandoned(1, timeout=5)
    finally:
        client.close()
    assert MailStore(tmp_path).list() == []
