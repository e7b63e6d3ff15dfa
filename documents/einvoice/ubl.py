"""UBL 2.1 Invoice and CreditNote from the neutral ``EInvoice`` (Peppol BIS Billing 3.0 / XRechnung).

UBL is an ordered schema: every ``_add`` below follows the element order of the UBL 2.1 XSD, which the
CEN rules assume. lxml builds the tree, so text is always escaped and the output is well-formed.
"""

from __future__ import annotations

from datetime import date

from lxml import etree

from documents.einvoice.model import EInvoice, Party, amount, decimal_text
from documents.einvoice.profiles import PEPPOL_PROFILE, Profile

CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
ROOT_NS = {
    "invoice": "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2",
    "credit_note": "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2",
}


def _cbc(parent: etree._Element, name: str, text: str, **attrs: str) -> etree._Element:
    el = etree.SubElement(parent, f"{{{CBC}}}{name}", attrs)
    el.text = text
    return el


def _cac(parent: etree._Element, name: str) -> etree._Element:
    return etree.SubElement(parent, f"{{{CAC}}}{name}")


def _date(value: date) -> str:
    return value.isoformat()


def _party(parent: etree._Element, party: Party, *, seller: bool) -> None:
    p = _cac(parent, "Party")
    if party.endpoint_id:
        _cbc(p, "EndpointID", party.endpoint_id, schemeID=party.endpoint_scheme)
    _cbc(_cac(p, "PartyName"), "Name", party.name)
    addr = _cac(p, "PostalAddress")
    a = party.address
    if a.line1:
        _cbc(addr, "StreetName", a.line1)
    if a.line2:
        _cbc(addr, "AdditionalStreetName", a.line2)
    if a.city:
        _cbc(addr, "CityName", a.city)
    if a.postal_code:
        _cbc(addr, "PostalZone", a.postal_code)
    if a.region:
        _cbc(addr, "CountrySubentity", a.region)
    _cbc(_cac(addr, "Country"), "IdentificationCode", a.country)
    if party.vat_id:
        scheme = _cac(p, "PartyTaxScheme")
        _cbc(scheme, "CompanyID", party.vat_id)
        _cbc(_cac(scheme, "TaxScheme"), "ID", "VAT")
    legal = _cac(p, "PartyLegalEntity")
    _cbc(legal, "RegistrationName", party.name)
    if party.legal_id:
        _cbc(legal, "CompanyID", party.legal_id)
    if seller and party.legal_form:
        _cbc(legal, "CompanyLegalForm", party.legal_form)
    if party.contact_name or party.contact_phone or party.contact_email:
        contact = _cac(p, "Contact")
        if party.contact_name:
            _cbc(contact, "Name", party.contact_name)
        if party.contact_phone:
            _cbc(contact, "Telephone", party.contact_phone)
        if party.contact_email:
            _cbc(contact, "ElectronicMail", party.contact_email)


def _tax_category(parent: etree._Element, name: str, category: str, rate: str, reason: str = "") -> None:
    cat = _cac(parent, name)
    _cbc(cat, "ID", category)
    if category != "O":
        _cbc(cat, "Percent", rate)
    if reason:
        _cbc(cat, "TaxExemptionReason", reason)
    _cbc(_cac(cat, "TaxScheme"), "ID", "VAT")


def to_ubl(doc: EInvoice, profile: Profile) -> bytes:
    credit = doc.kind == "credit_note"
    root_name = "CreditNote" if credit else "Invoice"
    ns = ROOT_NS[doc.kind]
    root = etree.Element(f"{{{ns}}}{root_name}", nsmap={None: ns, "cac": CAC, "cbc": CBC})
    cur = doc.currency

    def money(parent: etree._Element, name: str, value) -> None:  # type: ignore[no-untyped-def]
        _cbc(parent, name, amount(value, cur), currencyID=cur)

    _cbc(root, "CustomizationID", profile.customization)
    _cbc(root, "ProfileID", PEPPOL_PROFILE)
    _cbc(root, "ID", doc.number)
    _cbc(root, "IssueDate", _date(doc.issue_date))
    if not credit and doc.due_date:
        _cbc(root, "DueDate", _date(doc.due_date))
    _cbc(root, "CreditNoteTypeCode" if credit else "InvoiceTypeCode", "381" if credit else "380")
    if doc.note:
        _cbc(root, "Note", doc.note)
    _cbc(root, "DocumentCurrencyCode", cur)
    if doc.buyer_reference:
        _cbc(root, "BuyerReference", doc.buyer_reference)
    if doc.period_start or doc.period_end:
        period = _cac(root, "InvoicePeriod")
        if doc.period_start:
            _cbc(period, "StartDate", _date(doc.period_start))
        if doc.period_end:
            _cbc(period, "EndDate", _date(doc.period_end))
    if doc.purchase_order:
        _cbc(_cac(root, "OrderReference"), "ID", doc.purchase_order)
    if doc.preceding_number:
        ref = _cac(_cac(root, "BillingReference"), "InvoiceDocumentReference")
        _cbc(ref, "ID", doc.preceding_number)
        if doc.preceding_date:
            _cbc(ref, "IssueDate", _date(doc.preceding_date))
    if doc.contract_ref:
        _cbc(_cac(root, "ContractDocumentReference"), "ID", doc.contract_ref)
    if doc.project_ref and not credit:
        _cbc(_cac(root, "ProjectReference"), "ID", doc.project_ref)
    _party(_cac(root, "AccountingSupplierParty"), doc.seller, seller=True)
    _party(_cac(root, "AccountingCustomerParty"), doc.buyer, seller=False)
    if doc.delivery_date or "K" in doc.categories:
        delivery = _cac(root, "Delivery")
        if doc.delivery_date:
            _cbc(delivery, "ActualDeliveryDate", _date(doc.delivery_date))
        if "K" in doc.categories:  # BR-IC-12: deliver-to country of an intra-community supply
            address = _cac(_cac(delivery, "DeliveryLocation"), "Address")
            b = doc.buyer.address
            for name, value in (("StreetName", b.line1), ("CityName", b.city), ("PostalZone", b.postal_code)):
                if value:
                    _cbc(address, name, value)
            _cbc(_cac(address, "Country"), "IdentificationCode", b.country)
    means = _cac(root, "PaymentMeans")
    _cbc(means, "PaymentMeansCode", doc.payment_means)
    if doc.payment_reference:
        _cbc(means, "PaymentID", doc.payment_reference)
    if doc.iban:
        account = _cac(means, "PayeeFinancialAccount")
        _cbc(account, "ID", doc.iban)
        _cbc(account, "Name", doc.seller.name)
        if doc.bic:
            _cbc(_cac(account, "FinancialInstitutionBranch"), "ID", doc.bic)
    if doc.payment_terms:
        _cbc(_cac(root, "PaymentTerms"), "Note", doc.payment_terms)

    tax_total = _cac(root, "TaxTotal")
    money(tax_total, "TaxAmount", doc.tax_total)
    for group in doc.tax_groups:
        sub = _cac(tax_total, "TaxSubtotal")
        money(sub, "TaxableAmount", group.taxable)
        money(sub, "TaxAmount", group.tax)
        _tax_category(sub, "TaxCategory", group.category, decimal_text(group.rate), group.exemption_reason)

    totals = _cac(root, "LegalMonetaryTotal")
    money(totals, "LineExtensionAmount", doc.line_total)
    money(totals, "TaxExclusiveAmount", doc.line_total)
    money(totals, "TaxInclusiveAmount", doc.total)
    if doc.prepaid:
        money(totals, "PrepaidAmount", doc.prepaid)
    money(totals, "PayableAmount", doc.payable)

    for line in doc.lines:
        el = _cac(root, "CreditNoteLine" if credit else "InvoiceLine")
        _cbc(el, "ID", line.id)
        if line.note:
            _cbc(el, "Note", line.note)
        _cbc(
            el,
            "CreditedQuantity" if credit else "InvoicedQuantity",
            decimal_text(line.quantity),
            unitCode=line.unit,
        )
        money(el, "LineExtensionAmount", line.net)
        if line.discount:
            allowance = _cac(el, "AllowanceCharge")
            _cbc(allowance, "ChargeIndicator", "false")
            _cbc(allowance, "AllowanceChargeReasonCode", "95")
            _cbc(allowance, "AllowanceChargeReason", "Discount")
            if line.discount_percent:
                _cbc(allowance, "MultiplierFactorNumeric", decimal_text(line.discount_percent))
            money(allowance, "Amount", line.discount)
            if line.discount_percent:  # PEPPOL-EN16931-R042: a base amount only with its percentage
                money(allowance, "BaseAmount", line.gross)
        item = _cac(el, "Item")
        if line.description:
            _cbc(item, "Description", line.description)
        _cbc(item, "Name", line.name)
        _tax_category(item, "ClassifiedTaxCategory", line.category, decimal_text(line.rate))
        _cbc(_cac(el, "Price"), "PriceAmount", decimal_text(line.unit_price), currencyID=cur)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
