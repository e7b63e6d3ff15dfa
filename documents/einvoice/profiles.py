"""The documents invoiceflow writes, and which official rules each one must pass.

A *format* is what ``GET /invoices/{id}/einvoice?format=`` names; a customer's ``einvoice_format``
picks the one that travels with the invoice email. CIUS (core invoice usage specifications) only
restrict EN 16931, so one writer per syntax serves them all: the profile changes the specification
identifier (BT-24) and the rule sets that run.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Peppol BIS Billing 3.0 (a CIUS of EN 16931).
PEPPOL_CUSTOMIZATION = "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
PEPPOL_PROFILE = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"
#: XRechnung 3.0 (KoSIT), the German CIUS.
XRECHNUNG_CUSTOMIZATION = "urn:cen.eu:en16931:2017#compliant#urn:xeinkauf.de:kosit:xrechnung_3.0"
#: EN 16931 itself: the Factur-X / ZUGFeRD "EN 16931" (COMFORT) profile's guideline id.
EN16931 = "urn:cen.eu:en16931:2017"


@dataclass(frozen=True)
class Profile:
    format: str
    syntax: str  # ubl | cii
    customization: str
    rules: tuple[str, ...]  # rule-set names of documents.einvoice.rules
    media_type: str
    extension: str
    label: str


PROFILES: dict[str, Profile] = {
    "ubl": Profile(
        "ubl",
        "ubl",
        PEPPOL_CUSTOMIZATION,
        ("cen-ubl", "peppol-ubl"),
        "application/xml",
        "xml",
        "Peppol BIS Billing 3.0 (UBL 2.1)",
    ),
    "cii": Profile(
        "cii", "cii", EN16931, ("cen-cii",), "application/xml", "xml", "EN 16931 (UN/CEFACT CII D16B)"
    ),
    "xrechnung-ubl": Profile(
        "xrechnung-ubl",
        "ubl",
        XRECHNUNG_CUSTOMIZATION,
        ("cen-ubl", "xrechnung-ubl"),
        "application/xml",
        "xml",
        "XRechnung 3.0 (UBL 2.1)",
    ),
    "xrechnung-cii": Profile(
        "xrechnung-cii",
        "cii",
        XRECHNUNG_CUSTOMIZATION,
        ("cen-cii", "xrechnung-cii"),
        "application/xml",
        "xml",
        "XRechnung 3.0 (CII D16B)",
    ),
    "facturx": Profile(
        "facturx",
        "cii",
        EN16931,
        ("cen-cii",),
        "application/pdf",
        "pdf",
        "Factur-X / ZUGFeRD, profile EN 16931 (PDF/A-3 with CII)",
    ),
}

#: The document that goes with the invoice email for each customer ``einvoice_format``.
CUSTOMER_FORMAT: dict[str, str | None] = {
    "none": None,
    "facturx": "facturx",
    "xrechnung": "xrechnung-ubl",
    "peppol": "ubl",
}


def profile_for(fmt: str) -> Profile:
    try:
        return PROFILES[fmt]
    except KeyError:
        raise ValueError(f"format: one of {', '.join(PROFILES)}, not {fmt!r}") from None
