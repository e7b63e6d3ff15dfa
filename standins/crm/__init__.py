"""CRM stand-ins: HubSpot CRM v3 and Pipedrive API v2 as small in-memory FastAPI apps.

Each factory returns ``(app, state)``: serve the app with ``standins.server.serve`` and point the real
client (``integrations.hubspot.HubSpotClient``, ``integrations.pipedrive.PipedriveClient``) at its
``base_url``; seed deals through ``state.add_*``, read ``state.calls`` to see what a client asked for, and
make the next requests fail with ``state.rate_limit(times=...)``.
"""

from standins.crm.hubspot import HubSpotState, create_hubspot_standin
from standins.crm.pipedrive import PipedriveState, create_pipedrive_standin

__all__ = ["HubSpotState", "PipedriveState", "create_hubspot_standin", "create_pipedrive_standin"]
