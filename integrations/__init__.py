"""Clients for the third-party systems invoiceflow reads from (CRMs first).

Each client returns the boundary types of ``integrations.crm`` and raises its typed errors, so workflows
and activities never see a provider's JSON. Local stand-ins with the same HTTP surface live in
``standins.crm``.
"""

from integrations.crm import (
    CrmAuthFailed,
    CrmBadResponse,
    CrmContact,
    CrmDeal,
    CrmError,
    CrmLineItem,
    CrmNotFound,
    CrmRateLimited,
    CrmTransient,
)
from integrations.hubspot import HUBSPOT_API_URL, HubSpotClient
from integrations.pipedrive import PIPEDRIVE_API_URL, PipedriveClient

__all__ = [
    "HUBSPOT_API_URL",
    "PIPEDRIVE_API_URL",
    "CrmAuthFailed",
    "CrmBadResponse",
    "CrmContact",
    "CrmDeal",
    "CrmError",
    "CrmLineItem",
    "CrmNotFound",
    "CrmRateLimited",
    "CrmTransient",
    "HubSpotClient",
    "PipedriveClient",
]
