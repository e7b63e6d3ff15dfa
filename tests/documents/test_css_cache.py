"""Stylesheets parsed once per process (css_cache.CSSCachingContext): a cached parse never stands in for
another template's CSS, an edited one, or a different order of the same stylesheets."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from xhtml2pdf import document as pisa_document

from documents import css_cache
from documents.rendering import render_invoice_pdf
from tests.documents.samples import document, reader

RED, GREEN, BLUE = "1 0 0", "0 1 0", "0 0 1"


def fill_colours(pdf: bytes) -> list[str]:
    """The fill colours the pages set, in order (reportlab writes ``r g b rg``)."""
    content = b"".join(page.get_contents().get_data() for page in reader(pdf).pages).decode("latin-1")
    return re.findall(r"([\d.]+ [\d.]+ [\d.]+) rg", content)


def render_with(folder: Path, html: str) -> bytes:
    (folder / "invoice.html").write_text(html)
    return render_invoice_pdf(document(), folder)


def page(*styles: str, body: str = "<p>{{ doc.number }}</p>") -> str:
    head = "".join(f"<style>{css}</style>" for css in styles)
    return f"<html><head>{head}</head><body>{body}</body></html>"


def test_pisa_document_builds_the_caching_context() -> None:
    render_invoice_pdf(document())  # installed with xhtml2pdf, on the first render
    assert pisa_document.pisaContext is css_cache.CSSCachingContext


def test_user_template_css_applies_after_the_builtin_was_cached_and_when_edited(tmp_path: Path) -> None:
    builtin = fill_colours(render_invoice_pdf(document()))
    assert fill_colours(render_invoice_pdf(document())) == builtin  # the second render from the cache
    assert fill_colours(render_with(tmp_path, page("p { color: #ff0000; }"))) == [RED]
    # edited in place: new text, new parse
    assert fill_colours(render_with(tmp_path, page("p { color: #0000ff; }"))) == [BLUE]
    (tmp_path / "invoice.html").unlink()
    assert fill_colours(render_invoice_pdf(document(), tmp_path)) == builtin


def test_two_templates_in_one_process_keep_their_own_css(tmp_path: Path) -> None:
    red, blue = tmp_path / "red", tmp_path / "blue"
    red.mkdir(), blue.mkdir()
    (red / "invoice.html").write_text(page("p { color: #ff0000; }"))
    (blue / "invoice.html").write_text(page("p { color: #0000ff; }"))
    for _ in range(2):
        assert fill_colours(render_invoice_pdf(document(), red)) == [RED]
        assert fill_colours(render_invoice_pdf(document(), blue)) == [BLUE]


def test_the_later_stylesheet_wins_in_each_documents_own_order(tmp_path: Path) -> None:
    # Different selectors of equal specificity: the cascade settles it by the order rules were parsed in.
    # (The same selector twice would be settled earlier, when the stylesheets are merged.)
    body = '<p class="a b">{{ doc.number }}</p>'
    red, blue = ".a { color: #ff0000; }", ".b { color: #0000ff; }"
    for _ in range(2):  # the second time from the cache
        assert fill_colours(render_with(tmp_path, page(red, blue, body=body))) == [BLUE]
        assert fill_colours(render_with(tmp_path, page(blue, red, body=body))) == [RED]


def test_rules_from_an_at_rule_block_keep_their_place_among_cached_stylesheets(tmp_path: Path) -> None:
    body = '<p class="a b c">{{ doc.number }}</p>'
    red, green = ".a { color: #ff0000; }", "@media print { .b { color: #00ff00; } }"
    blue = ".c { color: #0000ff; }"
    for _ in range(2):
        assert fill_colours(render_with(tmp_path, page(red, green, blue, body=body))) == [BLUE]
        assert fill_colours(render_with(tmp_path, page(red, green, body=body))) == [GREEN]
        assert fill_colours(render_with(tmp_path, page(green, red, body=body))) == [RED]


def test_root_custom_properties_reach_the_page_rule_on_every_render(tmp_path: Path) -> None:
    html = page(":root { --width: 100mm; }", "@page { size: var(--width) 120mm; }")
    for _ in range(2):
        box = reader(render_with(tmp_path, html)).pages[0].mediabox
        assert (round(float(box.width)), round(float(box.height))) == (283, 340)  # 100 mm x 120 mm


def test_ignored_properties_are_reported_on_cached_renders_too(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    html = page("p { float: left; color: #ff0000; }")
    for _ in range(2):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="xhtml2pdf"):
            render_with(tmp_path, html)
        assert any("does not implement: float" in record.getMessage() for record in caplog.records)


def test_cache_stays_bounded(tmp_path: Path) -> None:
    for i in range(css_cache.CSS_CACHE_SIZE + 5):
        render_with(tmp_path, page(f"p {{ color: #0000{i:02x}; }}"))
    assert len(css_cache._css_cache) <= css_cache.CSS_CACHE_SIZE
