"""Project activities: bill a trigger (one transaction, idempotent) and build a project from a won deal.

Building from a deal calls the CRM (HubSpot's webhook is thin: it names the deal, not its amount or line
items). CRM errors map to Temporal retries: a 429 waits for the CRM's own retry-after, outages back
off, a deal that does not exist is final and the webhook event is put back to ``unmatched`` with the
reason, so an operator sees it instead of losing it.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from decimal import Decimal

from temporalio import activity
from temporalio.exceptions import ApplicationError

from billing.errors import MoneyError
from billing.money import quantize
from billing.projects import DepositSpec
from billing.totals import LineInput, compute_totals
from core.settings import Settings
from integrations.crm import CrmAuthFailed, CrmDeal, CrmNotFound, CrmRateLimited
from integrations.hubspot import HubSpotClient
from integrations.pipedrive import PipedriveClient
from persistence import projects as repo
from persistence import time_entries
from persistence import webhook_inbox as inbox
from persistence.db import session_scope
from persistence.models import Project
from workflows.payloads import (
    ActivityName,
    BillOutcome,
    BillTriggerRequest,
    ProjectFromDealRequest,
    ProjectReady,
    TmSchedule,
)


class PlanError(ValueError):
    pass


def parse_deal_plan(value: str) -> DepositSpec | None:
    """`full` → no deposit; `deposit:<percent>` → that deposit on deal won, the rest on completion."""
    text = value.strip().lower()
    if text == "full":
        return None
    if text.startswith("deposit:"):
        return DepositSpec(percent=Decimal(text.split(":", 1)[1].strip()))
    raise PlanError(f"INVOICEFLOW_DEAL_WON_PLAN: expected 'full' or 'deposit:<percent>', got {value!r}")


def deal_project(settings: Settings, project_id: uuid.UUID, deal: CrmDeal, customer) -> repo.NewProject:  # type: ignore[no-untyped-def]
    """The default plan for a won deal: its own line items billed at once, or a deposit then the rest."""
    deposit = parse_deal_plan(settings.deal_won_plan)
    currency = (deal.currency or customer.currency).upper()
    lines = [_line(item, currency) for item in deal.line_items]
    amount = deal.amount if deal.amount is not None else None
    if not lines:
        if amount is None or amount <= 0:
            raise MoneyError(f"deal {deal.deal_id} has neither line items nor an amount to bill")
        lines = [LineInput(description=deal.name, quantity=Decimal(1), unit_price=amount)]
    if deposit is None:
        milestone = repo.NewMilestone(
            key="deal", name=deal.name, amount=_lines_net(lines, currency), lines=lines, bill_on="deal_won"
        )
    else:
        milestone = repo.NewMilestone(
            key="completion",
            name=f"{deal.name}: balance on completion",
            amount=_lines_net(lines, currency),
            lines=lines,
            bill_on="milestone",
        )
    return repo.NewProject(
        customer=customer,
        name=deal.name,
        currency=currency,
        milestones=[milestone],
        payment_terms=customer.payment_terms,
        deposit=deposit,
        deposit_on="deal_won",
        refs={f"{deal.provider}_deal": deal.deal_id},
        source=deal.provider,
        project_id=project_id,
    )


def _line(item, currency: str) -> LineInput:  # type: ignore[no-untyped-def]
    """A CRM line item as an invoice line; the CRM's own line total wins (a discount shows as one)."""
    if item.tax_inclusive:
        raise MoneyError(
            f"line item {item.name!r} has a tax-inclusive price; invoiceflow bills net prices plus tax"
        )
    gross = quantize(item.quantity * item.unit_price, currency)
    discount = gross - item.amount if Decimal(0) <= item.amount < gross else Decimal(0)
    return LineInput(
        description=item.name,
        quantity=item.quantity,
        unit_price=item.unit_price,
        discount_amount=quantize(discount, currency),
        tax_rate=item.tax_rate or Decimal(0),
    )


def _lines_net(lines: list[LineInput], currency: str) -> Decimal:
    return compute_totals(lines, currency).subtotal


class ProjectActivities:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._url = settings.require_database_url()

    @activity.defn(name=ActivityName.BILL_PROJECT_TRIGGER)
    def bill_project_trigger(self, request: BillTriggerRequest) -> BillOutcome:
        try:
            with session_scope(self._url) as session:
                return repo.bill_trigger(session, uuid.UUID(request.project_id), request.trigger)
        except repo.ProjectNotFound as exc:
            raise ApplicationError(str(exc), type="ProjectNotFound", non_retryable=True) from exc

    @activity.defn(name=ActivityName.LOAD_TM_SCHEDULE)
    def load_tm_schedule(self, project_id: str) -> TmSchedule:
        """The project's T&M calendar for its workflow's timer (none: it waits for triggers only)."""
        with session_scope(self._url) as session:
            return time_entries.schedule(session, uuid.UUID(project_id))

    async def _fetch(self, provider: str, deal_id: str) -> CrmDeal:
        s = self._settings
        if provider == "hubspot":
            if not s.hubspot_api_token:
                raise CrmAuthFailed("INVOICEFLOW_HUBSPOT_API_TOKEN is not set: cannot read the won deal")
            async with HubSpotClient(s.hubspot_api_base_url, s.hubspot_api_token) as hubspot:
                return await hubspot.fetch_deal(deal_id)
        if provider == "pipedrive":
            if not s.pipedrive_api_token:
                raise CrmAuthFailed("INVOICEFLOW_PIPEDRIVE_API_TOKEN is not set: cannot read the won deal")
            async with PipedriveClient(s.pipedrive_api_base_url, s.pipedrive_api_token) as pipedrive:
                return await pipedrive.fetch_deal(deal_id)
        raise CrmNotFound(f"no CRM client for {provider!r}")

    @activity.defn(name=ActivityName.CREATE_PROJECT_FROM_DEAL)
    async def create_project_from_deal(self, request: ProjectFromDealRequest) -> ProjectReady:
        project_id = uuid.UUID(request.project_id)
        exists = await asyncio.to_thread(self._exists, project_id)
        if exists:
            return ProjectReady(project_id=request.project_id, created=True, detail="already built")
        try:
            deal = await self._fetch(request.deal.provider, request.deal.deal_id)
        except CrmRateLimited as exc:
            raise ApplicationError(
                str(exc), type="CrmRateLimited", next_retry_delay=timedelta(seconds=max(exc.retry_after, 1))
            ) from exc
        except CrmNotFound as exc:
            return await asyncio.to_thread(
                self._not_built, request, f"{request.deal.provider} deal {request.deal.deal_id}: {exc}"
            )
        try:
            return await asyncio.to_thread(self._build, project_id, deal)
        except (MoneyError, PlanError) as exc:
            return await asyncio.to_thread(
                self._not_built, request, f"cannot bill deal {deal.deal_id}: {exc}"
            )

    def _exists(self, project_id: uuid.UUID) -> bool:
        with session_scope(self._url) as session:
            return session.get(Project, project_id) is not None

    def _build(self, project_id: uuid.UUID, deal: CrmDeal) -> ProjectReady:
        with session_scope(self._url) as session:
            if session.get(Project, project_id) is not None:  # a concurrent attempt won
                return ProjectReady(project_id=str(project_id), created=True, detail="already built")
            contact = deal.contact
            customer = repo.customer_for_deal(
                session,
                provider=deal.provider,
                company_id=deal.company_id,
                name=deal.company_name or (contact.name if contact else None) or deal.name,
                email=contact.email if contact else None,
                currency=(deal.currency or self._settings.default_currency).upper(),
                terms=self._settings.default_payment_terms,
            )
            repo.create_project(session, deal_project(self._settings, project_id, deal, customer))
            return ProjectReady(
                project_id=str(project_id),
                created=True,
                detail=f"built from {deal.provider} deal {deal.deal_id}",
            )

    def _not_built(self, request: ProjectFromDealRequest, reason: str) -> ProjectReady:
        """The won deal cannot become a project: put its webhook event back where operators look."""
        with session_scope(self._url) as session:
            inbox.unroute_deal(session, f"{request.deal.provider}_deal", request.deal.deal_id, reason)
        return ProjectReady(project_id=request.project_id, created=False, detail=reason)
