"""MailStore on its own: file format, envelope round-trip, ordering, persistence."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from invoiceflow.mailbox import MailStore, MessageNotFound

from .helpers import PDF_BYTES, invoice_message


def test_save_list_get_round_trip(tmp_path: Path) -> None:
    store = MailStore(tmp_path / "mail")
    sent = invoice_message("Invoice INV-0001")
    raw = sent.as_bytes()
    before = datetime.now(UTC)
    saved = store.save(raw, "billing@invoiceflow.localhost", ["client@example.com", "audit@example.com"])

    assert re.fullmatch(r"\d{8}T\d{6}\.\d{6}Z-[0-9a-f]{32}", saved.id)
    assert before - timedelta(seconds=1) <= saved.received_at <= datetime.now(UTC) + timedelta(seconds=1)
    files = sorted(p.name for p in (tmp_path / "mail").iterdir())
    assert files == [f"{saved.id}.eml"]  # one file per message, no temporary file left behind

    [listed] = store.list()
    got = store.get(saved.id)
    for message in (saved, listed, got):
        assert message.id == saved.id
        assert message.mail_from == "billing@invoiceflow.localhost"
        assert message.rcpt_tos == ["client@example.com", "audit@example.com"]
        assert message.subject == "Invoice INV-0001"
        assert message.message_id == sent["Message-ID"]
        assert message.raw == raw
        assert message.received_at == saved.received_at
        [attachment] = message.attachments()
        assert (attachment.filename, attachment.content_type) == ("INV-0001.pdf", "application/pdf")
        assert attachment.payload == PDF_BYTES
        assert "please find invoice INV-0001" in (message.text_body() or "")
        assert "<b>INV-0001</b>" in (message.html_body() or "")

    # The file is a valid .eml: the envelope is recorded in two leading headers.
    content = (tmp_path / "mail" / f"{saved.id}.eml").read_bytes()
    assert content.startswith(
        b"X-Invoiceflow-Envelope-From: <billing@invoiceflow.localhost>\r\n"
        b"X-Invoiceflow-Envelope-To: <client@example.com>, <audit@example.com>\r\n"
    )
    assert content.endswith(raw)


def test_message_id_header_is_exposed(tmp_path: Path) -> None:
    store = MailStore(tmp_path)
    message = invoice_message()
    saved = store.save(message.as_bytes(), "a@example.com", ["b@example.com"])
    assert saved.message_id == message["Message-ID"]
    assert saved.message_id.startswith("<") and saved.message_id.endswith("@invoiceflow.localhost>")


def test_non_ascii_subject_and_attachment_name_are_decoded(tmp_path: Path) -> None:
    message = invoice_message("Rechnung für März – 1.234,00 €")
    for part in message.iter_attachments():
        part.set_param("filename", "Rechnung März.pdf", header="Content-Disposition")
    saved = MailStore(tmp_path).save(message.as_bytes(), "a@example.com", ["b@example.com"])
    assert b"=?utf-8?" in saved.raw  # encoded on the wire...
    got = MailStore(tmp_path).get(saved.id)
    assert got.subject == "Rechnung für März – 1.234,00 €"  # ...decoded here
    assert [a.filename for a in got.attachments()] == ["Rechnung März.pdf"]


def test_unusual_envelope_addresses_round_trip(tmp_path: Path) -> None:
    store = MailStore(tmp_path)
    rcpts = ['"odd, <name>"@example.com', "ünïcode@exämple.com", "percent%hack@example.com", "x@y"]
    saved = store.save(b"Subject: hi\r\n\r\nbody\r\n", "", rcpts)
    again = MailStore(tmp_path).get(saved.id)
    assert again.mail_from == ""
    assert again.rcpt_tos == rcpts


def test_original_envelope_headers_in_the_message_are_not_mistaken_for_ours(tmp_path: Path) -> None:
    store = MailStore(tmp_path)
    raw = b"X-Invoiceflow-Envelope-To: <forged@example.com>\r\nSubject: loop\r\n\r\nbody\r\n"
    saved = store.save(raw, "a@example.com", ["real@example.com"])
    got = store.get(saved.id)
    assert got.rcpt_tos == ["real@example.com"]
    assert got.raw == raw


def test_list_is_oldest_first_and_survives_a_new_instance(tmp_path: Path) -> None:
    store = MailStore(tmp_path / "mail")
    ids = [store.save(f"Subject: m{i}\r\n\r\n.\r\n".encode(), "a@x", [f"r{i}@x"]).id for i in range(25)]
    assert [m.id for m in store.list()] == ids
    assert [m.subject for m in store.list()] == [f"m{i}" for i in range(25)]

    reopened = MailStore(tmp_path / "mail")
    assert [m.id for m in reopened.list()] == ids
    assert [m.rcpt_tos for m in reopened.list()] == [[f"r{i}@x"] for i in range(25)]
    assert len(reopened) == 25


def test_clear_and_delete(tmp_path: Path) -> None:
    store = MailStore(tmp_path)
    first = store.save(b"Subject: 1\r\n\r\n", "a@x", ["b@x"])
    store.save(b"Subject: 2\r\n\r\n", "a@x", ["b@x"])
    store.delete(first.id)
    assert [m.subject for m in store.list()] == ["2"]
    with pytest.raises(MessageNotFound):
        store.get(first.id)
    assert store.clear() == 1
    assert store.list() == []
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("bad", ["../etc/passwd", "", "x", "20250101T000000.000000Z-" + "g" * 32])
def test_get_rejects_invalid_ids(tmp_path: Path, bad: str) -> None:
    with pytest.raises(MessageNotFound):
        MailStore(tmp_path).get(bad)


def test_foreign_eml_files_are_listed_without_envelope(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_bytes(b"ignored: not an .eml file")
    name = "20250101T000000.000000Z-" + "a" * 32
    (tmp_path / f"{name}.eml").write_bytes(b"Subject: dropped in\r\n\r\nhello\r\n")
    [message] = MailStore(tmp_path).list()
    assert (message.id, message.subject, message.mail_from, message.rcpt_tos) == (name, "dropped in", "", [])
    assert message.received_at == datetime(2025, 1, 1, tzinfo=UTC)


def test_wait_for_times_out_with_a_useful_message(tmp_path: Path) -> None:
    store = MailStore(tmp_path)
    store.save(b"Subject: only one\r\n\r\n", "a@x", ["b@x"])
    assert [m.subject for m in store.wait_for(1, timeout=1)] == ["only one"]
    with pytest.raises(TimeoutError, match="only one"):
        store.wait_for(2, timeout=0.2)
