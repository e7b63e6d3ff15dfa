"""The invoice PDF: content read back with pypdf, escaping, pagination, fonts, template overrides, errors."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from xhtml2pdf import pisa

from documents import rendering
from documents.rendering import (
    BUILTIN_TEMPLATE_DIR,
    BUNDLED_FONT_DIR,
    DocumentTotal,
    Party,
    RenderError,
    render_email,
    render_invoice_html,
    render_invoice_pdf,
)
from tests.documents.samples import (
    NUMBER,
    document,
    font_names,
    image_count,
    line,
    link_uris,
    page_texts,
    reader,
    text,
)

HOSTILE = "<script>alert(1)</script><img src=http://evil>"


def test_pdf_carries_the_invoice() -> None:
    pdf = render_invoice_pdf(document())
    assert pdf.startswith(b"%PDF")
    pages = reader(pdf).pages
    assert len(pages) == 1
    width, height = float(pages[0].mediabox.width), float(pages[0].mediabox.height)
    assert (round(width), round(height)) == (595, 842)  # A4 portrait in points
    content = text(pdf)
    for expected in (
        NUMBER,
        "Northwind Software GmbH",
        "Globex Corporation",
        "Item 002 cloud hosting",
        "53,121.60 €",
        "2026-12-25",
        "Net 30",
        "DE123456789",
        "IBAN DE89 3704 0044 0532 0130 00",
        "Page 1 of 1",
    ):
        assert expected in content, expected
    for header in ("Description", "Qty", "Unit price", "Discount", "Tax", "Amount"):
        assert header in content
    # a line's cells, as the caller formatted them
    for cell in ("12.5", "1,200.00 EUR", "-120.00 EUR", "19%", "14,880.00 EUR"):
        assert cell in content


def test_euro_sign_survives_the_default_font() -> None:
    content = text(
        render_invoice_pdf(document(totals=(DocumentTotal("Total", "1.234,56 €", emphasis=True),)))
    )
    assert "1.234,56 €" in content


def test_letters_helvetica_lacks_come_from_the_bundled_fallback_font() -> None:
    plain = render_invoice_pdf(document())
    assert not any("Vera" in name for name in font_names(plain))  # embedded only when needed

    pdf = render_invoice_pdf(document(customer=Party(name="Łukasz Čapek İnşaat")))
    assert "Łukasz Čapek İnşaat" in text(pdf)
    assert any("BitstreamVeraSans" in name for name in font_names(pdf))


@pytest.mark.parametrize(
    "overrides",
    [
        {"lines": (line("Łukasz: montage"),)},
        {"notes": "Płatność w terminie"},
        {"terms": "Net 30 — Łódź"},
        {"totals": (DocumentTotal("Razem ł", "1,00 EUR", emphasis=True),)},
        {"seller": Party(name="Acme", address="ul. Łąkowa 1")},
        {"status_stamp": "void ş"},
    ],
    ids=["line", "notes", "terms", "total", "seller-address", "stamp"],
)
def test_fallback_font_is_declared_when_any_field_needs_it(overrides: dict[str, object]) -> None:
    doc = document(**overrides)
    assert rendering.needs_fallback_font(doc)
    assert "@font-face" in render_invoice_html(doc)
    assert any("BitstreamVeraSans" in name for name in font_names(render_invoice_pdf(doc)))


def test_fallback_font_is_left_out_when_helvetica_covers_everything() -> None:
    doc = document(notes="€ £ ¥ – “ ” • ™ © Œuvre Ärger ß", customer=Party(name="Société Générale"))
    assert not rendering.needs_fallback_font(doc)
    assert "@font-face" not in render_invoice_html(doc) and "InvoiceFallback" not in render_invoice_html(doc)
    # the upper-cased title has a letter Helvetica lacks although the title itself has none
    assert rendering.needs_fallback_font(document(title="Rechnung µ"))


def test_user_text_is_escaped_in_html_and_printed_literally_in_pdf() -> None:
    doc = document(
        lines=(line(HOSTILE),),
        customer=Party(name="Bobby <b>Tables</b> & Sons", address="<i>x</i>\nline two"),
        notes="</div><h1>fake</h1>",
    )
    html = render_invoice_html(doc)
    assert "<script>" not in html and "<img src=http://evil>" not in html and "<b>Tables</b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=http://evil&gt;" in html
    assert "Bobby &lt;b&gt;Tables&lt;/b&gt; &amp; Sons" in html
    assert "&lt;/div&gt;&lt;h1&gt;fake&lt;/h1&gt;" in html
    assert "&lt;i&gt;x&lt;/i&gt;<br/>line two" in html  # line breaks kept, markup not

    pdf = render_invoice_pdf(doc)
    content = text(pdf)
    assert HOSTILE in content
    assert "Bobby <b>Tables</b> & Sons" in content
    assert "</div><h1>fake</h1>" in content
    assert image_count(pdf) == 0


def test_hostile_text_fetches_nothing(counting_server) -> None:  # type: ignore[no-untyped-def]
    hostile = (
        f'<img src="{counting_server.base}/desc.png">'
        f'<link rel="stylesheet" href="{counting_server.base}/s.css">'
    )
    render_invoice_pdf(document(lines=(line(hostile),), notes=hostile))
    assert counting_server.requests == []


def test_address_line_breaks_are_rendered() -> None:
    html = render_invoice_html(document())
    assert "Friedrichstraße 123<br/>10117 Berlin" in html
    assert "1 Main Street<br/>Springfield" in html
    content = text(
        render_invoice_pdf(document(customer=Party(name="Globex", address="Line A\r\nLine B\rLine C")))
    )
    assert re.search(r"Line A\s*\n\s*Line B\s*\n\s*Line C", content)


def test_sixty_lines_paginate_with_repeated_header_and_page_numbers() -> None:
    pdf = render_invoice_pdf(document(lines=60))
    pages = page_texts(pdf)
    assert len(pages) > 1
    for number, page in enumerate(pages, start=1):
        assert f"Page {number} of {len(pages)}" in page
        if "cloud hosting" in page:
            assert "Description" in page and "Unit price" in page, f"no table header on page {number}"
    assert sum("cloud hosting" in page for page in pages) >= 2  # the table itself spans pages
    everything = "\n".join(pages)
    for i in range(1, 61):
        assert everything.count(f"Item {i:03d} cloud hosting") == 1
    # the totals block comes last and is never split across pages
    assert "Subtotal" in pages[-1] and "53,121.60 €" in pages[-1]
    assert not any("Subtotal" in page for page in pages[:-1])


def test_totals_block_moves_to_the_next_page_whole() -> None:
    # Enough lines that the page fills up right where the totals would start, for some count.
    for count in range(20, 32):
        pages = page_texts(render_invoice_pdf(document(lines=count)))
        holding = [page for page in pages if "Subtotal" in page]
        assert len(holding) == 1 and "VAT 19%" in holding[0] and "53,121.60 €" in holding[0], count


def test_status_stamp_only_when_set() -> None:
    assert "PAID" not in text(render_invoice_pdf(document()))
    assert "PAID" in text(render_invoice_pdf(document(status_stamp="PAID")))
    assert "VOID" in text(render_invoice_pdf(document(status_stamp="void")))


def test_pay_url_is_printed_and_linked_only_when_http() -> None:
    url = "https://pay.northwind.example/i/7f3a9c2e"
    pdf = render_invoice_pdf(document(pay_url=url))
    assert url in text(pdf)
    assert url in link_uris(pdf)
    assert link_uris(render_invoice_pdf(document())) == []

    sneaky = "javascript:alert(1)"
    pdf = render_invoice_pdf(document(pay_url=sneaky))
    assert sneaky in text(pdf)
    assert link_uris(pdf) == []


def test_long_unbroken_text_and_empty_invoice_still_render() -> None:
    assert "x" * 40 in text(render_invoice_pdf(document(lines=(line("x" * 400),))))
    pdf = render_invoice_pdf(document(lines=(), totals=(), notes="", terms="", currency=""))
    assert NUMBER in text(pdf)


def test_user_folder_overrides_only_the_files_it_has(tmp_path: Path) -> None:
    (tmp_path / "invoice.html").write_text(
        "<html><body><p>Custom layout {{ doc.number }} for {{ doc.customer.name }}</p></body></html>"
    )
    html = render_invoice_html(document(customer=Party(name="A & B")), tmp_path)
    assert html == "<html><body><p>Custom layout INV-2026-000123 for A &amp; B</p></body></html>"
    assert "Custom layout INV-2026-000123" in text(render_invoice_pdf(document(), tmp_path))
    # emails were not overridden: the built-in ones are used
    assert NUMBER in render_email("invoice", {"number": NUMBER}, tmp_path).subject


def test_user_folder_without_invoice_falls_back_to_builtin(tmp_path: Path) -> None:
    (tmp_path / "email").mkdir()
    (tmp_path / "email" / "invoice.subject.txt").write_text("Yours: {{ number }}")
    assert "Unit price" in text(render_invoice_pdf(document(), tmp_path))
    assert render_email("invoice", {"number": "N1"}, tmp_path).subject == "Yours: N1"


def test_override_template_can_extend_the_font_setup_with_its_own_font(tmp_path: Path) -> None:
    (tmp_path / "fonts").mkdir()
    shutil.copy(BUNDLED_FONT_DIR / "VeraIt.ttf", tmp_path / "fonts" / "House.ttf")
    (tmp_path / "invoice.html").write_text(
        "<html><head><style>@font-face { font-family: House; src: url('fonts/House.ttf'); }"
        "body { font-family: House; }</style></head><body><p>{{ doc.number }}</p></body></html>"
    )
    pdf = render_invoice_pdf(document(), tmp_path)
    assert NUMBER in text(pdf)
    assert any("BitstreamVeraSans-Oblique" in name for name in font_names(pdf))


def test_missing_template_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RenderError, match="does not exist"):
        render_invoice_pdf(document(), tmp_path / "nope")


def test_builtin_folder_given_explicitly_is_the_builtin() -> None:
    assert render_invoice_html(document(), BUILTIN_TEMPLATE_DIR) == render_invoice_html(document())


def test_template_typo_fails_loudly(tmp_path: Path) -> None:
    (tmp_path / "invoice.html").write_text("<p>{{ doc.totl }}</p>")
    with pytest.raises(RenderError, match="totl"):
        render_invoice_pdf(document(), tmp_path)
    (tmp_path / "invoice.html").write_text("<p>{% if %}</p>")
    with pytest.raises(RenderError, match="invoice.html"):
        render_invoice_html(document(), tmp_path)


def test_xhtml2pdf_exception_becomes_render_error(tmp_path: Path) -> None:
    (tmp_path / "invoice.html").write_text(
        '<html><body><pdf:nexttemplate name="nope"/><p>x</p></body></html>'
    )
    with pytest.raises(RenderError, match="xhtml2pdf failed"):
        render_invoice_pdf(document(), tmp_path)


def test_xhtml2pdf_error_status_becomes_render_error(monkeypatch: pytest.MonkeyPatch) -> None:
    real = pisa.CreatePDF

    def failing(*args, **kwargs):  # type: ignore[no-untyped-def]
        status = real(*args, **kwargs)
        status.error("simulated failure in a table")
        return status

    monkeypatch.setattr(pisa, "CreatePDF", failing)
    with pytest.raises(RenderError, match=r"1 error\(s\).*simulated failure in a table"):
        render_invoice_pdf(document())


def test_concurrent_renders_from_a_thread_pool_do_not_mix() -> None:
    from concurrent.futures import ThreadPoolExecutor
    from dataclasses import replace

    docs = [
        replace(document(lines=8), number=f"INV-T-{i}", customer=Party(name=f"Customer {i}"))
        for i in range(6)
    ]
    with ThreadPoolExecutor(max_workers=4) as pool:
        pdfs = list(pool.map(render_invoice_pdf, docs))
    for i, pdf in enumerate(pdfs):
        content = text(pdf)
        assert f"INV-T-{i}" in content and f"Customer {i}" in content
        assert not any(f"INV-T-{j}" in content for j in range(6) if j != i)


# --- caches that never serve a stale template (one layout pass: test_page_count.py) ----------------------


def test_template_compiles_once_per_process(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from jinja2 import Environment

    (tmp_path / "invoice.html").write_text("<p>{{ doc.number }}</p>")
    compiled: list[str | None] = []
    real = Environment.compile

    def compile(self, source, name=None, *args, **kwargs):  # type: ignore[no-untyped-def]
        compiled.append(name)
        return real(self, source, name, *args, **kwargs)

    monkeypatch.setattr(Environment, "compile", compile)
    for _ in range(3):
        render_invoice_html(document(), tmp_path)
    assert compiled == ["invoice.html"]


def test_edited_user_template_is_used_at_once(tmp_path: Path) -> None:
    # Same size, written twice within the same moment: an mtime check could miss the second edit.
    (tmp_path / "invoice.html").write_text("<p>first {{ doc.number }}</p>")
    assert render_invoice_html(document(), tmp_path) == f"<p>first {NUMBER}</p>"
    (tmp_path / "invoice.html").write_text("<p>again {{ doc.number }}</p>")
    assert render_invoice_html(document(), tmp_path) == f"<p>again {NUMBER}</p>"


def test_override_added_later_shadows_the_cached_builtin(tmp_path: Path) -> None:
    assert "Unit price" in render_invoice_html(document(), tmp_path)  # built-in, now cached
    (tmp_path / "invoice.html").write_text("<p>mine {{ doc.number }}</p>")
    assert render_invoice_html(document(), tmp_path) == f"<p>mine {NUMBER}</p>"
    (tmp_path / "invoice.html").unlink()
    assert "Unit price" in render_invoice_html(document(), tmp_path)


def test_worker_and_api_processes_do_not_import_the_pdf_libraries() -> None:
    """xhtml2pdf, reportlab and pypdf (about 40 MB) load on the first render: a worker renders in its
    render processes, so its own memory never holds them, parked-invoice memory."""
    import subprocess
    import sys

    probe = (
        "import sys, worker, api.main\n"
        "print(sorted(m for m in ('xhtml2pdf', 'reportlab', 'pypdf') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.stdout.strip() == "[]"
