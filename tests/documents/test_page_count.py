"""Page numbers "of Y" in one layout pass: the guessed page count (documents.page_count, page_estimate),
checked against xhtml2pdf's own two passes, which count the pages before they print them."""

from __future__ import annotations

from pathlib import Path

import pytest

from documents import rendering
from documents.page_estimate import estimated_pages
from documents.rendering import render_invoice_html, render_invoice_pdf
from tests.documents.samples import NUMBER, document, line, page_texts, text


@pytest.fixture
def layout_passes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts reportlab layout passes (multiBuild calls build once per pass)."""
    from reportlab.platypus.doctemplate import BaseDocTemplate

    passes: list[int] = []
    real = BaseDocTemplate.build

    def build(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        passes.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(BaseDocTemplate, "build", build)
    return passes


def _counted_by_xhtml2pdf(doc: rendering.InvoiceDocument) -> list[str]:
    """The page texts of ``doc`` rendered with no guess: xhtml2pdf's two passes, as before the guess."""
    html = render_invoice_html(doc)
    return page_texts(rendering._html_to_pdf(html, rendering.template_folders(None), doc.number, None))


def _assert_numbered(pages: list[str]) -> None:
    for number, page in enumerate(pages, start=1):
        assert f"Page {number} of {len(pages)}" in page, number


@pytest.mark.parametrize(("lines", "expected_pages"), [(3, 1), (60, 3), (330, 10)])
def test_one_and_ten_page_invoices_say_the_same_in_one_pass(
    lines: int, expected_pages: int, layout_passes: list[int]
) -> None:
    doc = document(lines=lines)
    pages = page_texts(render_invoice_pdf(doc))
    assert len(layout_passes) == 1  # the guess held: no second pass
    assert len(pages) == expected_pages == estimated_pages(doc)
    _assert_numbered(pages)
    everything = "\n".join(pages)
    for i in range(1, lines + 1):
        assert everything.count(f"Item {i:03d} cloud hosting") == 1
    for expected in (NUMBER, "Northwind Software GmbH", "Globex Corporation", "53,121.60 €", "Net 30"):
        assert expected in everything, expected
    assert "Subtotal" in pages[-1] and "VAT 19%" in pages[-1]
    if lines <= 60:  # word for word what xhtml2pdf's own two passes print, page by page (10 pages: slow)
        assert pages == _counted_by_xhtml2pdf(doc)


@pytest.mark.parametrize("guess", [1, 9])
def test_a_wrong_guess_takes_the_second_pass_and_prints_the_real_count(
    guess: int, layout_passes: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rendering, "estimated_pages", lambda doc: guess)
    doc = document(lines=60)
    pages = page_texts(render_invoice_pdf(doc))
    assert len(pages) == 3 and guess != 3
    _assert_numbered(pages)
    assert len(layout_passes) == 2  # never more than xhtml2pdf's own two
    assert not any(f"Page {number} of {guess}" in page for number, page in enumerate(pages, start=1))


def test_long_descriptions_are_guessed_by_the_lines_they_wrap_to(layout_passes: list[int]) -> None:
    long_lines = tuple(line(f"Item {i} " + "migration work and review " * 40) for i in range(8))
    doc = document(lines=long_lines)
    pages = page_texts(render_invoice_pdf(doc))
    assert len(pages) == estimated_pages(doc) > 1
    _assert_numbered(pages)
    assert len(layout_passes) == 1


def test_html_preview_keeps_the_page_count_tag() -> None:
    assert "<pdf:pagecount>" in render_invoice_html(document())
    assert "<pdf:pagecount>" not in render_invoice_html(document(), page_count=3)
    assert "Page <pdf:pagenumber> of 3" in render_invoice_html(document(), page_count=3)


def test_user_template_that_counts_its_own_pages_is_guessed_too(
    tmp_path: Path, layout_passes: list[int]
) -> None:
    # An override written before page_count existed: <pdf:pagecount> in it makes xhtml2pdf count.
    (tmp_path / "invoice.html").write_text(
        "<html><body>{% for l in doc.lines %}<p>{{ l.description }}</p>{% endfor %}"
        "<p>Sheet <pdf:pagenumber> of <pdf:pagecount></p></body></html>"
    )
    assert "Sheet 1 of 1" in text(render_invoice_pdf(document(), tmp_path))
    assert len(layout_passes) == 1


def test_user_template_that_renumbers_its_pages_is_not_guessed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    guesses: list[int | None] = []
    real = rendering._html_to_pdf

    def html_to_pdf(html: str, folders: tuple[Path, ...], number: str, pages: int | None = None) -> bytes:
        guesses.append(pages)
        return real(html, folders, number, pages)

    monkeypatch.setattr(rendering, "_html_to_pdf", html_to_pdf)
    (tmp_path / "invoice.html").write_text(
        "<html><body><pdf:resetpagenumber value='5'/><p>{{ doc.number }}</p>"
        "<p>Sheet <pdf:pagenumber> of <pdf:pagecount></p></body></html>"
    )
    assert NUMBER in text(render_invoice_pdf(document(), tmp_path))
    assert guesses == [None]
