"""Invoice PDF and email rendering: content read back with pypdf, escaping, overrides, and the
renderer's refusal to fetch remote URLs or read files outside its template folders."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from pypdf import PdfReader

from activities.rendering import (
    BUILTIN_TEMPLATE_DIR,
    DocumentLine,
    DocumentTotal,
    InvoiceDocument,
    Party,
    RenderError,
    render_email,
    render_invoice_html,
    render_invoice_pdf,
    safe_link_callback,
)
from tests.support import pdf_text

# A 1×1 PNG.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c6360f8cfc0f01f0005000201a5f5c1a80000000049454e44ae426082"
)


def document(lines: int = 2, description: str = "Portal rebuild") -> InvoiceDocument:
    return InvoiceDocument(
        title="Invoice",
        number="INV-2026-000042",
        issue_date="2026-11-25",
        due_date="2026-12-25",
        currency="EUR",
        seller=Party(name="Acme IT Services", address="Hauptstr. 1\n10115 Berlin", tax_id="DE123456789"),
        customer=Party(name="Globex GmbH", address="Street 2", email="ap@globex.example.com"),
        lines=tuple(
            DocumentLine(f"{description} {i}", "10", "150.00 EUR", "", "19%", "1,500.00 EUR") for i in range(lines)
        ),
        totals=(DocumentTotal("Subtotal", "3,000.00 EUR"), DocumentTotal("Total", "3,570.00 €", emphasis=True)),
        notes="Bank: DE00 1234",
        terms="Net 30",
    )


def test_pdf_carries_number_customer_lines_and_total() -> None:
    pdf = render_invoice_pdf(document())
    assert pdf.startswith(b"%PDF")
    text = pdf_text(pdf)
    for expected in ("INV-2026-000042", "Globex GmbH", "Portal rebuild 1", "3,570.00 €", "Net 30", "DE123456789"):
        assert expected in text, expected


def test_user_text_is_escaped_not_interpreted() -> None:
    hostile = '<script>alert(1)</script><img src="http://127.0.0.1:9/x.png">'
    html = render_invoice_html(document(description=hostile))
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<img" not in html
    assert "<script>alert(1)</script>" in pdf_text(render_invoice_pdf(document(description=hostile)))


def test_long_invoice_paginates_with_repeated_header() -> None:
    reader = PdfReader(io.BytesIO(render_invoice_pdf(document(lines=80))))
    assert len(reader.pages) >= 2
    for page in reader.pages:
        text = page.extract_text()
        assert "Unit price" in text  # table header repeated on every page
    assert f"Page 2 of {len(reader.pages)}" in reader.pages[1].extract_text()


def test_user_folder_overrides_only_what_it_has(tmp_path: Path) -> None:
    (tmp_path / "invoice.html").write_text("<html><body><p>Custom layout {{ doc.number }}</p></body></html>")
    assert "Custom layout INV-2026-000042" in pdf_text(render_invoice_pdf(document(), tmp_path))
    email = render_email("invoice", {"number": "INV-1", "total": "5.00 EUR", "seller_name": "Acme"}, tmp_path)
    assert "INV-1" in email.subject  # built-in email template still used


def test_broken_template_fails_loudly(tmp_path: Path) -> None:
    (tmp_path / "invoice.html").write_text("<p>{{ doc.no_such_field }}</p>")
    with pytest.raises(Exception, match="no_such_field"):
        render_invoice_pdf(document(), tmp_path)
    with pytest.raises(RenderError, match="unknown email kind"):
        render_email("nonsense", {})


@pytest.fixture
def counting_server() -> Iterator[tuple[str, list[str]]]:
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.end_headers()
            self.wfile.write(PNG)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", hits
    server.shutdown()


def test_renderer_never_fetches_remote_urls(tmp_path: Path, counting_server: tuple[str, list[str]]) -> None:
    base, hits = counting_server
    (tmp_path / "invoice.html").write_text(
        f'<html><head><link rel="stylesheet" href="{base}/style.css"></head><body>'
        f'<img src="{base}/logo.png"><p>{{{{ doc.number }}}}</p></body></html>'
    )
    render_invoice_pdf(document(), tmp_path)
    assert hits == []


def test_renderer_reads_only_inside_template_folders(tmp_path: Path) -> None:
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "logo.png").write_bytes(PNG)
    (tmp_path / "secret.png").write_bytes(PNG)
    resolve = safe_link_callback([folder.resolve(), BUILTIN_TEMPLATE_DIR.resolve()])
    assert resolve("logo.png") == str((folder / "logo.png").resolve())
    assert resolve("../secret.png") is None
    assert resolve(str(tmp_path / "secret.png")) is None
    assert resolve("/etc/passwd") is None
    assert resolve("file:///etc/passwd") is None
    assert resolve("http://127.0.0.1/logo.png") is None

    def image_count(html: str) -> int:
        (folder / "invoice.html").write_text(html)
        reader = PdfReader(io.BytesIO(render_invoice_pdf(document(), folder)))
        return sum(len(page.images) for page in reader.pages)

    assert image_count('<html><body><img src="logo.png" width="20" height="20"><p>x</p></body></html>') == 1
    assert image_count('<html><body><img src="../secret.png" width="20" height="20"><p>x</p></body></html>') == 0


@pytest.mark.parametrize("kind", ["invoice", "reminder", "escalation", "payment_receipt"])
def test_each_email_kind_names_the_invoice(kind: str) -> None:
    email = render_email(kind, {"number": "INV-2026-000042", "customer_name": "Globex", "seller_name": "Acme", "offset_days": 7})
    assert "INV-2026-000042" in email.subject
    assert "INV-2026-000042" in email.text and "INV-2026-000042" in email.html


def test_reminder_tone_follows_the_due_date() -> None:
    subjects = {
        offset: render_email("reminder", {"number": "N1", "due_date": "2026-12-25", "offset_days": offset}).subject
        for offset in (-3, 0, 14)
    }
    assert subjects[-3].startswith("Reminder: invoice N1 is due on 2026-12-25")
    assert subjects[0] == "Invoice N1 is due today"
    assert subjects[14].startswith("Overdue: invoice N1") and "14 days ago" in subjects[14]


def test_email_html_escapes_and_text_does_not() -> None:
    email = render_email("invoice", {"number": "N1", "customer_name": "Smith & <Sons>"})
    assert "Smith &amp; &lt;Sons&gt;" in email.html
    assert "Smith & <Sons>" in email.text
