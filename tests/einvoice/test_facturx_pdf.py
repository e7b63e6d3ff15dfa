"""The Factur-X hybrid: its embedded factur-x.xml extracts and passes the CEN rules, and each PDF/A-3
requirement is there, checked structurally (veraPDF, Java, is not installed here): embedded fonts only,
one sRGB output intent, XMP with pdfaid 3/B and the Factur-X extension schema, the associated file."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pikepdf
import pytest
from pikepdf import pdfa

from activities.einvoice import produce_for
from activities.pdf import RenderPool
from core.settings import Settings
from documents.einvoice.facturx import (
    FacturXError,
    associated_file_problems,
    embedded_xml,
    to_pdfa3,
    xmp_facts,
)
from documents.einvoice.pool import EInvoicePool
from documents.einvoice.validation import errors_of, failed_asserts
from documents.rendering import render_invoice_pdf
from persistence.db import session_scope
from tests.documents.samples import document
from tests.einvoice.cases import SELLER, Case, line, make_invoice
from tests.support import pdf_text


@pytest.fixture(scope="module")
def pool() -> Iterator[EInvoicePool]:
    pool = EInvoicePool(1)
    yield pool
    pool.shutdown()


@pytest.fixture(scope="module")
def hybrid(pg_url: str, pool: EInvoicePool) -> tuple[bytes, bytes, str]:
    settings = Settings(database_url=pg_url, **SELLER)  # type: ignore[arg-type]
    case = Case(
        "de",
        [line("Backend engineering", "40", "125.00", "19", unit="HUR"), line("Handbook", "1", "49.90", "7")],
    )
    with session_scope(pg_url) as session:
        invoice = make_invoice(session, case, settings)
        produced = produce_for(session, invoice, "facturx", settings, RenderPool(0), pool)
        number = invoice.number
    assert produced.valid, produced.errors
    assert number is not None
    return produced.content, produced.xml, number


def test_embedded_xml_extracts_and_passes_the_cen_rules(hybrid: tuple[bytes, bytes, str]) -> None:
    pdf, xml, number = hybrid
    assert pdf.startswith(b"%PDF-")
    extracted = embedded_xml(pdf)
    assert extracted == xml
    assert errors_of(failed_asserts(extracted, ["cen-cii"])) == []
    assert b"urn:cen.eu:en16931:2017</ram:ID>" in extracted  # the EN 16931 (COMFORT) profile
    assert number in pdf_text(pdf)  # still the invoice the client reads


def test_pdfa3_markers(hybrid: tuple[bytes, bytes, str]) -> None:
    pdf, _, _ = hybrid
    facts = xmp_facts(pdf)
    assert facts["pdfaid:part"] == "3" and facts["pdfaid:conformance"] == "B"
    assert facts["fx:DocumentType"] == "INVOICE"
    assert facts["fx:DocumentFileName"] == "factur-x.xml"
    assert facts["fx:ConformanceLevel"] == "EN 16931"
    assert "urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#" in facts["extension_schemas"]
    assert associated_file_problems(pdf) == []
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        [intent] = doc.Root.OutputIntents
        assert intent.S == pikepdf.Name.GTS_PDFA1
        assert intent.DestOutputProfile.get("/N") == 3  # an RGB ICC profile (sRGB)
        assert "sRGB" in str(intent.OutputConditionIdentifier)
        [spec] = doc.Root.AF
        assert spec.AFRelationship == pikepdf.Name.Alternative
        assert "/ID" in doc.trailer
        for page in doc.pages:
            for name, font in page.Resources.Font.items():
                descriptor = font.get("/FontDescriptor")
                assert descriptor is not None and "/FontFile2" in descriptor, f"{name} is not embedded"
                assert "Helvetica" not in str(font.BaseFont)
        # pikepdf's allowlist validator (veraPDF rules) finds nothing but what it says it cannot check.
        report = pdfa.check(doc, "3b")
        unchecked = {f.rule for f in report.findings}
        assert unchecked <= {"pikepdf:embedded-file", "ISO_19005_3:6.6.2.3.1-1"}, report.findings


def test_a_pdf_drawn_with_unembedded_helvetica_is_refused() -> None:
    plain = render_invoice_pdf(document())  # the ordinary PDF: Helvetica, not embedded
    with pytest.raises(FacturXError, match="unembedded font"):
        to_pdfa3(plain)
