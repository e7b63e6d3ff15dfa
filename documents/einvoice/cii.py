"""UN/CEFACT Cross Industry Invoice D16B from the neutral ``EInvoice``: the XML of Factur-X / ZUGFeRD
(profile EN 16931) and of XRechnung CII.

The element order follows the D16B schema (``SupplyChainTradeTransaction``: lines, then agreement,
delivery and settlement; inside each the XSD's sequence), which the CEN rules and the Factur-X XSD
check. Credit notes are type 381 with positive amounts and the credited invoice in
``InvoiceReferencedDocument`` (BT-25/26).
"""

from __future__ import annotations

from datetime import date

from lxml import etree

from documents.einvoice.model import EInvoice, Party, amount, decimal_text
from documents.einvoice.profiles import Profile

RSM = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
UDT = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"
QDT = "urn:un:unece:uncefact:data:standard:QualifiedDataType:100"
NSMAP = {"rsm": RSM, "ram": RAM, "udt": UDT, "qdt": QDT}


def _el(parent: etree._Element, qname: str, text: str | None = None, **attrs: str) -> etree._Element:
    prefix, name = qname.split(":")
    el = etree.SubElement(parent, f"{{{NSMAP[prefix]}}}{name}", attrs)
    if text is not None:
        el.text = text
    return el


def _date(parent: etree._Element, qname: str, value: date, kind: str = "udt") -> None:
    _el(_el(parent, qname), f"{kind}:DateTimeString", value.strftime("%Y%m%d"), format="102")


def _party(parent: etree._Element, qname: str, party: Party) -> None:
    p = _el(parent, qname)
    _el(p, "ram:Name", party.name)
    if party.legal_form:
        _el(p, "ram:Description", party.legal_form)
    if party.legal_id:
        _el(_el(p, "ram:SpecifiedLegalOrganization"), "ram:ID", party.legal_id)
    if party.contact_name or party.contact_phone or party.contact_email:
        contact = _el(p, "ram:DefinedTradeContact")
        if party.contact_name:
            _el(contact, "ram:PersonName", party.contact_name)
        if party.contact_phone:
            _el(
                _el(contact, "ram:TelephoneUniversalCommunication"), "ram:CompleteNumber", party.contact_phone
            )
        if party.contact_email:
            _el(_el(contact, "ram:EmailURIUniversalCommunication"), "ram:URIID", party.contact_email)
    a = party.address
    addr = _el(p, "ram:PostalTradeAddress")
    if a.postal_code:
        _el(addr, "ram:PostcodeCode", a.postal_code)
    if a.line1:
        _el(addr, "ram:LineOne", a.line1)
    if a.line2:
        _el(addr, "ram:LineTwo", a.line2)
    if a.city:
        _el(addr, "ram:CityName", a.city)
    _el(addr, "ram:CountryID", a.country)
    if a.region:
        _el(addr, "ram:CountrySubDivisionName", a.region)
    if party.endpoint_id:
        _el(
            _el(p, "ram:URIUniversalCommunication"),
            "ram:URIID",
            party.endpoint_id,
            schemeID=party.endpoint_scheme,
        )
    if party.vat_id:
        _el(_el(p, "ram:SpecifiedTaxRegistration"), "ram:ID", party.vat_id, schemeID="VA")


def to_cii(doc: EInvoice, profile: Profile) -> bytes:
    cur = doc.currency
    root = etree.Element(f"{{{RSM}}}CrossIndustryInvoice", nsmap=NSMAP)
    context = _el(root, "rsm:ExchangedDocumentContext")
    _el(_el(context, "ram:GuidelineSpecifiedDocumentContextParameter"), "ram:ID", profile.customization)
    header = _el(root, "rsm:ExchangedDocument")
    _el(header, "ram:ID", doc.number)
    _el(header, "ram:TypeCode", "381" if doc.kind == "credit_note" else "380")
    _date(header, "ram:IssueDateTime", doc.issue_date)
    if doc.note:
        _el(_el(header, "ram:IncludedNote"), "ram:Content", doc.note)
    tx = _el(root, "rsm:SupplyChainTradeTransaction")

    for line in doc.lines:
        item = _el(tx, "ram:IncludedSupplyChainTradeLineItem")
        document = _el(item, "ram:AssociatedDocumentLineDocument")
        _el(document, "ram:LineID", line.id)
        if line.note:
            _el(_el(document, "ram:IncludedNote"), "ram:Content", line.note)
        product = _el(item, "ram:SpecifiedTradeProduct")
        _el(product, "ram:Name", line.name)
        if line.description:
            _el(product, "ram:Description", line.description)
        agreement = _el(item, "ram:SpecifiedLineTradeAgreement")
        _el(
            _el(agreement, "ram:NetPriceProductTradePrice"), "ram:ChargeAmount", decimal_text(line.unit_price)
        )
        _el(
            _el(item, "ram:SpecifiedLineTradeDelivery"),
            "ram:BilledQuantity",
            decimal_text(line.quantity),
            unitCode=line.unit,
        )
        settlement = _el(item, "ram:SpecifiedLineTradeSettlement")
        tax = _el(settlement, "ram:ApplicableTradeTax")
        _el(tax, "ram:TypeCode", "VAT")
        _el(tax, "ram:CategoryCode", line.category)
        if line.category != "O":
            _el(tax, "ram:RateApplicablePercent", decimal_text(line.rate))
        if line.discount:
            allowance = _el(settlement, "ram:SpecifiedTradeAllowanceCharge")
            _el(_el(allowance, "ram:ChargeIndicator"), "udt:Indicator", "false")
            if line.discount_percent:
                _el(allowance, "ram:CalculationPercent", decimal_text(line.discount_percent))
                _el(allowance, "ram:BasisAmount", amount(line.gross, cur))
            _el(allowance, "ram:ActualAmount", amount(line.discount, cur))
            _el(allowance, "ram:ReasonCode", "95")
            _el(allowance, "ram:Reason", "Discount")
        summary = _el(settlement, "ram:SpecifiedTradeSettlementLineMonetarySummation")
        _el(summary, "ram:LineTotalAmount", amount(line.net, cur))

    agreement = _el(tx, "ram:ApplicableHeaderTradeAgreement")
    if doc.buyer_reference:
        _el(agreement, "ram:BuyerReference", doc.buyer_reference)
    _party(agreement, "ram:SellerTradeParty", doc.seller)
    _party(agreement, "ram:BuyerTradeParty", doc.buyer)
    if doc.purchase_order:
        _el(_el(agreement, "ram:BuyerOrderReferencedDocument"), "ram:IssuerAssignedID", doc.purchase_order)
    if doc.contract_ref:
        _el(_el(agreement, "ram:ContractReferencedDocument"), "ram:IssuerAssignedID", doc.contract_ref)
    if doc.project_ref:
        project = _el(agreement, "ram:SpecifiedProcuringProject")
        _el(project, "ram:ID", doc.project_ref)
        _el(project, "ram:Name", doc.project_ref)

    delivery = _el(tx, "ram:ApplicableHeaderTradeDelivery")
    if "K" in doc.categories:  # BR-IC-12: deliver-to country of an intra-community supply
        ship = _el(delivery, "ram:ShipToTradeParty")
        _el(ship, "ram:Name", doc.buyer.name)
        address = _el(ship, "ram:PostalTradeAddress")
        b = doc.buyer.address
        if b.postal_code:
            _el(address, "ram:PostcodeCode", b.postal_code)
        if b.line1:
            _el(address, "ram:LineOne", b.line1)
        if b.city:
            _el(address, "ram:CityName", b.city)
        _el(address, "ram:CountryID", b.country)
    if doc.delivery_date:
        _date(
            _el(delivery, "ram:ActualDeliverySupplyChainEvent"), "ram:OccurrenceDateTime", doc.delivery_date
        )

    settlement = _el(tx, "ram:ApplicableHeaderTradeSettlement")
    if doc.payment_reference:
        _el(settlement, "ram:PaymentReference", doc.payment_reference)
    _el(settlement, "ram:InvoiceCurrencyCode", cur)
    means = _el(settlement, "ram:SpecifiedTradeSettlementPaymentMeans")
    _el(means, "ram:TypeCode", doc.payment_means)
    if doc.iban:
        account = _el(means, "ram:PayeePartyCreditorFinancialAccount")
        _el(account, "ram:IBANID", doc.iban)
        _el(account, "ram:AccountName", doc.seller.name)
        if doc.bic:
            _el(_el(means, "ram:PayeeSpecifiedCreditorFinancialInstitution"), "ram:BICID", doc.bic)
    for group in doc.tax_groups:
        tax = _el(settlement, "ram:ApplicableTradeTax")
        _el(tax, "ram:CalculatedAmount", amount(group.tax, cur))
        _el(tax, "ram:TypeCode", "VAT")
        if group.exemption_reason:
            _el(tax, "ram:ExemptionReason", group.exemption_reason)
        _el(tax, "ram:BasisAmount", amount(group.taxable, cur))
        _el(tax, "ram:CategoryCode", group.category)
        if group.category != "O":
            _el(tax, "ram:RateApplicablePercent", decimal_text(group.rate))
    if doc.period_start or doc.period_end:
        period = _el(settlement, "ram:BillingSpecifiedPeriod")
        if doc.period_start:
            _date(period, "ram:StartDateTime", doc.period_start)
        if doc.period_end:
            _date(period, "ram:EndDateTime", doc.period_end)
    if doc.payment_terms or doc.due_date:
        terms = _el(settlement, "ram:SpecifiedTradePaymentTerms")
        if doc.payment_terms:
            _el(terms, "ram:Description", doc.payment_terms)
        if doc.due_date:
            _date(terms, "ram:DueDateDateTime", doc.due_date)
    summary = _el(settlement, "ram:SpecifiedTradeSettlementHeaderMonetarySummation")
    _el(summary, "ram:LineTotalAmount", amount(doc.line_total, cur))
    _el(summary, "ram:TaxBasisTotalAmount", amount(doc.line_total, cur))
    _el(summary, "ram:TaxTotalAmount", amount(doc.tax_total, cur), currencyID=cur)
    _el(summary, "ram:GrandTotalAmount", amount(doc.total, cur))
    if doc.prepaid:
        _el(summary, "ram:TotalPrepaidAmount", amount(doc.prepaid, cur))
    _el(summary, "ram:DuePayableAmount", amount(doc.payable, cur))
    if doc.preceding_number:
        ref = _el(settlement, "ram:InvoiceReferencedDocument")
        _el(ref, "ram:IssuerAssignedID", doc.preceding_number)
        if doc.preceding_date:
            _date(ref, "ram:FormattedIssueDateTime", doc.preceding_date, kind="qdt")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
