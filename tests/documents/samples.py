"""Builders and PDF probes shared by the rendering tests (no database, no network)."""

from __future__ import annotations

import io
import zlib
from dataclasses import replace

from pypdf import PdfReader

from documents.rendering import DocumentLine, DocumentTotal, InvoiceDocument, Party

NUMBER = "INV-2026-000123"


def line(description: str = "Backend engineering", **overrides: str) -> DocumentLine:
    values = {
        "description": description,
        "quantity": "12.5",
        "unit_price": "1,200.00 EUR",
        "discount": "-120.00 EUR",
        "tax_rate": "19%",
        "amount": "14,880.00 EUR",
    }
    values.update(overrides)
    return DocumentLine(**values)


def document(lines: int | tuple[DocumentLine, ...] = 3, **overrides: object) -> InvoiceDocument:
    if isinstance(lines, int):
        lines = tuple(line(f"Item {i:03d} cloud hosting") for i in range(1, lines + 1))
    doc = InvoiceDocument(
        title="Invoice",
        number=NUMBER,
        issue_date="2026-11-25",
        due_date="2026-12-25",
        currency="EUR",
        seller=Party(
            name="Northwind Software GmbH",
            address="Friedrichstraße 123\n10117 Berlin",
            email="billing@northwind.example",
            tax_id="DE123456789",
        ),
        customer=Party(
            name="Globex Corporation", address="1 Main Street\nSpringfield", email="ap@globex.example"
        ),
        lines=lines,
        totals=(
            DocumentTotal("Subtotal", "44,640.00 EUR"),
            DocumentTotal("VAT 19%", "8,481.60 EUR"),
            DocumentTotal("Total", "53,121.60 €", emphasis=True),
        ),
        notes="IBAN DE89 3704 0044 0532 0130 00",
        terms="Net 30",
    )
    return replace(doc, **overrides)  # type: ignore[arg-type]


def reader(pdf: bytes) -> PdfReader:
    return PdfReader(io.BytesIO(pdf))


def page_texts(pdf: bytes) -> list[str]:
    return [page.extract_text() or "" for page in reader(pdf).pages]


def text(pdf: bytes) -> str:
    return "\n".join(page_texts(pdf))


def image_count(pdf: bytes) -> int:
    return sum(len(page.images) for page in reader(pdf).pages)


def font_names(pdf: bytes) -> set[str]:
    names: set[str] = set()
    for page in reader(pdf).pages:
        fonts = page.get("/Resources", {}).get("/Font", {})
        for ref in fonts.values():
            names.add(str(ref.get_object().get("/BaseFont")))
    return names


def link_uris(pdf: bytes) -> list[str]:
    uris = []
    for page in reader(pdf).pages:
        for annot in page.get("/Annots", []) or []:
            action = annot.get_object().get("/A")
            if action and "/URI" in action:
                uris.append(str(action["/URI"]))
    return uris


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A solid-colour PNG (no Pillow needed to write it)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def image_colours(pdf: bytes) -> list[tuple[int, ...]]:
    """The top-left pixel of every image embedded in the PDF."""
    colours = []
    for page in reader(pdf).pages:
        for image in page.images:
            colours.append(tuple(image.image.convert("RGB").getpixel((0, 0))))
    return colours
