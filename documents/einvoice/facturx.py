"""The Factur-X / ZUGFeRD hybrid: the invoice PDF as PDF/A-3b with its CII XML embedded as
``factur-x.xml``.

Each step is done by the library that knows it:

1. The PDF is rendered with ``InvoiceDocument.embed_fonts`` (every glyph from the embedded Bitstream
   Vera TrueType font; PDF/A forbids the unembedded base-14 Helvetica the plain PDF uses).
2. ``factur-x`` (Akretion) checks the XML against the Factur-X EN 16931 XSD, embeds it as an
   associated file (``/AF``, ``/AFRelationship /Alternative``: the XML is the same invoice in
   structured form) and writes the XMP with the ``fx:`` extension schema (document type, file name,
   version, conformance level ``EN 16931``).
3. ``pikepdf.pdfa`` prepares the file for PDF/A-3b (one sRGB output intent, print flags on
   annotations, the DocInfo in step with the XMP), writes it and validates what it wrote with its
   allowlist checker built on the veraPDF rules; a file that does not pass is an error, never sent.
"""

from __future__ import annotations

import io
from datetime import date

from lxml import etree

FILENAME = "factur-x.xml"
FX_NS = "urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#"


class FacturXError(RuntimeError):
    """The hybrid PDF could not be made PDF/A-3 (the report's findings say why)."""


def hybrid_pdf(pdf: bytes, cii: bytes, *, number: str, seller: str, issue_date: date, title: str) -> bytes:
    """``pdf`` rendered with embedded fonts + its CII → the Factur-X PDF/A-3b."""
    from facturx import generate_from_binary

    base = to_pdfa3(pdf)
    attached = generate_from_binary(
        base,
        cii,
        flavor="factur-x",
        level="en16931",
        check_xsd=True,
        afrelationship="alternative",
        lang="en",
        pdf_metadata={
            "author": seller,
            "keywords": "Factur-X, Invoice",
            "title": f"{seller}: {title} {number}",
            "subject": f"Factur-X {title.lower()} {number} dated {issue_date.isoformat()} issued by {seller}",
        },
    )
    return _finish(attached)


def _retire_unused_fonts(doc) -> None:  # type: ignore[no-untyped-def]
    """reportlab opens every page with ``BT /F1 12 Tf ... ET`` (Helvetica, never embedded) and draws
    nothing with it: drop that operator and the font, and refuse a page that does draw with one."""
    import pikepdf

    for page in doc.pages:
        if "/Trans" in page:  # reportlab's empty page transition: presentation-only, unchecked by PDF/A
            del page["/Trans"]
        fonts = page.Resources.get("/Font")
        if fonts is None:
            continue
        unembedded = set()
        for name, font in fonts.items():
            descriptor = font.get("/FontDescriptor")
            if font.get("/Subtype") == "/Type0":
                descriptor = font.DescendantFonts[0].get("/FontDescriptor")
            if descriptor is None or not any(
                k in descriptor for k in ("/FontFile", "/FontFile2", "/FontFile3")
            ):
                unembedded.add(name)
        if not unembedded:
            continue
        current = None
        kept = []
        for operands, operator in pikepdf.parse_content_stream(page):
            op = str(operator)
            if op == "Tf":
                current = str(operands[0])
                if current in unembedded:
                    continue
            elif op in ("Tj", "TJ", "'", '"') and current in unembedded:
                raise FacturXError(
                    f"text is drawn with the unembedded font {current}: PDF/A needs it embedded"
                )
            kept.append(pikepdf.ContentStreamInstruction(operands, operator))
        page.Contents = doc.make_stream(pikepdf.unparse_content_stream(kept))
        for name in unembedded:
            del fonts[name]


def to_pdfa3(pdf: bytes) -> bytes:
    """A PDF without attachments → PDF/A-3b, validated by ``pikepdf.pdfa`` on the bytes it wrote."""
    import pikepdf
    from pikepdf import pdfa

    out = io.BytesIO()
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        _retire_unused_fonts(doc)
        try:
            pdfa.save(doc, out, "3b", output_intent="sRGB")
        except pdfa.PdfaError as exc:
            raise FacturXError(f"the PDF is not PDF/A-3b: {_findings(exc.report.findings)}") from exc
    return out.getvalue()


def _findings(findings) -> str:  # type: ignore[no-untyped-def]
    return "; ".join(f"{f.rule} at {f.where}: {f.message}" for f in list(findings)[:10])


#: pikepdf's allowlist validator does not check embedded files (it says so rather than guess): the
#: associated file is checked by ``associated_file_problems`` instead.
UNCHECKED = ("pikepdf:embedded-file",)


#: Nor does it know XMP extension schemas (PDF/A-3 6.6.2.3.2 permits properties a packet declares in
#: its own pdfaExtension:schemas): the Factur-X ones are checked by ``extension_schema_problems``.
EXTENSION_NAMESPACES = (
    "http://www.aiim.org/pdfa/ns/extension/",
    "http://www.aiim.org/pdfa/ns/schema#",
    "http://www.aiim.org/pdfa/ns/property#",
    FX_NS,
)
FX_PROPERTIES = ("DocumentType", "DocumentFileName", "Version", "ConformanceLevel")


def _extension_finding(finding) -> bool:  # type: ignore[no-untyped-def]
    if not finding.rule.endswith("6.6.2.3.1-1"):
        return False
    message = finding.message
    return any(ns in message for ns in EXTENSION_NAMESPACES) or message.startswith(
        ("XMP property pdfaExtension:", "XMP property fx:")
    )


def extension_schema_problems(pdf: bytes) -> list[str]:
    """The fx: properties are set and declared by a PDF/A extension schema in the same packet."""
    import pikepdf

    with pikepdf.open(io.BytesIO(pdf)) as doc:
        root = etree.fromstring(bytes(doc.Root.Metadata.read_bytes()))
    schema_ns = "http://www.aiim.org/pdfa/ns/schema#"
    property_ns = "http://www.aiim.org/pdfa/ns/property#"
    declared: set[str] = set()
    for schema in root.iter("{http://www.w3.org/1999/02/22-rdf-syntax-ns#}li"):
        if (schema.findtext(f"{{{schema_ns}}}namespaceURI") or "").strip() != FX_NS:
            continue
        declared |= {(el.text or "").strip() for el in schema.iter(f"{{{property_ns}}}name")}
    facts = xmp_facts(pdf)
    problems = [
        f"fx:{name} is not declared in the extension schema" for name in FX_PROPERTIES if name not in declared
    ]
    problems += [f"fx:{name} is not set" for name in FX_PROPERTIES if not facts.get(f"fx:{name}")]
    return problems


def _finish(pdf: bytes) -> bytes:
    import pikepdf
    from pikepdf import pdfa

    out = io.BytesIO()
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        if doc.Root.get("/PageMode") == pikepdf.Name.UseAttachments:
            del doc.Root["/PageMode"]  # not among the page modes the PDF/A validator allows
        _xmp_about(doc)
        report = pdfa.check(doc, "3b")
        other = [f for f in report.findings if f.rule not in UNCHECKED and not _extension_finding(f)]
        if other:
            raise FacturXError(f"the Factur-X PDF is not PDF/A-3b: {_findings(other)}")
        doc.save(out, **report.save_kwargs)
    problems = associated_file_problems(out.getvalue()) + extension_schema_problems(out.getvalue())
    if problems:
        raise FacturXError("the Factur-X PDF's embedded XML: " + "; ".join(problems))
    return out.getvalue()


RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"


def _xmp_about(doc) -> None:  # type: ignore[no-untyped-def]
    """XMP (ISO 16684-1, required by PDF/A) gives every rdf:Description an rdf:about; the XMP that
    factur-x writes leaves it out, and a strict reader drops such a Description (and with it the
    pdfaid and fx properties). Add the empty about the standard means."""
    root = etree.fromstring(bytes(doc.Root.Metadata.read_bytes()))
    changed = False
    for el in root.iter(f"{{{RDF}}}Description"):
        if f"{{{RDF}}}about" not in el.attrib:
            el.set(f"{{{RDF}}}about", "")
            changed = True
    if changed:
        packet = etree.tostring(root, encoding="UTF-8")
        data = b'<?xpacket begin="\xef\xbb\xbf" id="W5M0MpCehiHzreSzNTczkc9d"?>\n' + packet
        data += b'\n<?xpacket end="w"?>'
        doc.Root.Metadata = doc.make_stream(data, Type=pikepdf_name("Metadata"), Subtype=pikepdf_name("XML"))


def pikepdf_name(name: str):  # type: ignore[no-untyped-def]
    import pikepdf

    return pikepdf.Name("/" + name)


def associated_file_problems(pdf: bytes) -> list[str]:
    """PDF/A-3 (6.8) and Factur-X requirements of the embedded XML that the validator leaves out:
    listed in the catalog's /AF, /AFRelationship set, MIME type text/xml, a modification date."""
    import pikepdf

    problems = []
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        af = doc.Root.get("/AF")
        specs = [spec for spec in (af or []) if str(spec.get("/F", "")) == FILENAME]
        if not specs:
            return [f"{FILENAME} is not in the catalog's /AF array"]
        spec = specs[0]
        if spec.get("/AFRelationship") not in (
            pikepdf.Name.Alternative,
            pikepdf.Name.Data,
            pikepdf.Name.Source,
        ):
            problems.append(f"/AFRelationship is {spec.get('/AFRelationship')}")
        if str(spec.get("/UF", "")) != FILENAME:
            problems.append("/UF is not the file name")
        stream = spec.EF.F
        if stream.get("/Subtype") != pikepdf.Name("/text/xml"):
            problems.append(f"MIME type is {stream.get('/Subtype')}, not text/xml")
        if "/ModDate" not in stream.get("/Params", {}):
            problems.append("no /Params /ModDate")
    return problems


def embedded_xml(pdf: bytes) -> bytes:
    """The ``factur-x.xml`` a hybrid PDF carries (for tests and for reading one back)."""
    import pikepdf

    with pikepdf.open(io.BytesIO(pdf)) as doc:
        files = doc.attachments
        if FILENAME not in files:
            raise FacturXError(f"no {FILENAME} in the PDF (attachments: {sorted(files)})")
        return bytes(files[FILENAME].get_file().read_bytes())


def xmp_facts(pdf: bytes) -> dict[str, str]:
    """PDF/A and Factur-X facts from the XMP: pdfaid part/conformance, fx DocumentType/ConformanceLevel."""
    import pikepdf

    with pikepdf.open(io.BytesIO(pdf)) as doc:
        raw = bytes(doc.Root.Metadata.read_bytes())
    root = etree.fromstring(raw)
    facts: dict[str, str] = {}
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        ns, _, name = el.tag[1:].partition("}")
        if ns == "http://www.aiim.org/pdfa/ns/id/" and name in ("part", "conformance"):
            facts[f"pdfaid:{name}"] = (el.text or "").strip()
        if ns == FX_NS and name in ("DocumentType", "DocumentFileName", "Version", "ConformanceLevel"):
            facts[f"fx:{name}"] = (el.text or "").strip()
        for attr, value in el.attrib.items():
            ans, _, aname = attr[1:].partition("}") if attr.startswith("{") else ("", "", attr)
            if ans == "http://www.aiim.org/pdfa/ns/id/" and aname in ("part", "conformance"):
                facts[f"pdfaid:{aname}"] = value
            if ans == FX_NS:
                facts[f"fx:{aname}"] = value
        if ns == "http://www.aiim.org/pdfa/ns/schema#" and name == "namespaceURI":
            facts.setdefault("extension_schemas", "")
            facts["extension_schemas"] += (el.text or "").strip() + " "
    return facts
