"""``invoiceflow accounting import-customers``: link our customers to the books' contacts, or create
ours from them.

Each contact of the connected organisation is matched, in this order, by its id (already linked), by
tax id, then by email; exactly one candidate links, several are listed as ambiguous and left alone
(never guessed), a customer of ours already linked to another contact is listed as a conflict, and a
contact that matches nobody becomes a new customer of ours, linked to it in the same transaction: our
sync then addresses that contact by its id, so a customer created here exists there once. ``dry_run``
plans the same and writes nothing. Safe to run again: linked contacts are skipped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from accounting.changes import RemoteContact
from accounting.connection import open_connection
from accounting.reconcile import customer_system
from accounting.tokens import resolve_tenant
from billing.currency import normalize_currency
from billing.errors import MoneyError
from core.settings import Settings
from persistence import customer_links as repo
from persistence.db import session_scope


@dataclass
class ImportReport:
    provider: str
    tenant_id: str
    already: list[str] = field(default_factory=list)  # contact names
    linked: list[tuple[str, str]] = field(default_factory=list)  # (contact, our customer), how
    created: list[str] = field(default_factory=list)
    ambiguous: list[tuple[str, str]] = field(default_factory=list)  # (contact, why)
    dry_run: bool = False


def _candidates(contact: RemoteContact, ours: list[repo.OurCustomer]) -> tuple[list[repo.OurCustomer], str]:
    tax = repo.normal_tax_id(contact.tax_id)
    if tax:
        found = [c for c in ours if c.tax_id and c.tax_id == tax]
        if found:
            return found, "tax id"
    email = contact.email.strip().lower()
    if email:
        found = [c for c in ours if email in c.emails]
        if found:
            return found, "email"
    return [], ""


def plan_and_apply(
    settings: Settings,
    tenant_id: str,
    contacts: list[RemoteContact],
    *,
    dry_run: bool,
    advance: Callable[[], None] = lambda: None,
) -> ImportReport:
    provider = settings.accounting_provider
    system = customer_system(provider, tenant_id)
    report = ImportReport(provider, tenant_id, dry_run=dry_run)
    with session_scope(settings.require_database_url()) as session:
        ours = repo.our_customers(session, system)
        taken = {c.linked_to for c in ours if c.linked_to}
        for contact in contacts:
            advance()
            label = f"{contact.name} ({contact.external_id})"
            if contact.external_id in taken:
                report.already.append(label)
                continue
            found, how = _candidates(contact, ours)
            if len(found) > 1:
                names = ", ".join(f"{c.name} [{c.customer_id}]" for c in found)
                report.ambiguous.append((label, f"{len(found)} customers share its {how}: {names}"))
                continue
            if found:
                mine = found[0]
                if mine.linked_to and mine.linked_to != contact.external_id:
                    report.ambiguous.append(
                        (label, f"its {how} matches {mine.name}, already linked to contact {mine.linked_to}")
                    )
                    continue
                if not dry_run:
                    repo.link(session, mine.customer_id, system, contact.external_id)
                report.linked.append((label, f"{mine.name} by {how}"))
                taken.add(contact.external_id)
                continue
            try:
                currency = normalize_currency((contact.currency or settings.default_currency).upper())
            except MoneyError:
                currency = settings.default_currency
            if not dry_run:
                repo.create_linked(
                    session,
                    system=system,
                    external_id=contact.external_id,
                    name=contact.name or contact.email or contact.external_id,
                    email=contact.email,
                    tax_id=contact.tax_id,
                    currency=currency,
                    payment_terms=settings.default_payment_terms,
                )
            report.created.append(label)
            taken.add(contact.external_id)
        if dry_run:
            session.rollback()
    return report


async def fetch_contacts(settings: Settings) -> tuple[str, list[RemoteContact]]:
    tenant_id = await asyncio.to_thread(resolve_tenant, settings)
    connection = open_connection(settings, tenant_id)
    try:
        contacts = await connection.connector.list_contacts()  # type: ignore[attr-defined]
    finally:
        await connection.aclose()
    return tenant_id, list(contacts)
