"""Asana: confirm that a task is completed before a milestone bills.

Asana's webhook events are compact: "the `completed` field of task 1209 changed" says neither to what
nor by whom, and un-completing a task sends the same event. So the receiver reads the task
(`GET /api/1.0/tasks/{gid}?opt_fields=completed,completed_at,name`, personal access token) and bills
only a task that is completed now.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

ASANA_API_URL = "https://app.asana.com"


class AsanaError(Exception):
    """Asana could not answer (outage, rate limit, bad token): the webhook is answered 503 and Asana
    redelivers, so nothing is lost."""


@dataclass(frozen=True)
class AsanaTask:
    gid: str
    name: str
    completed: bool
    completed_at: str | None


async def fetch_task(base_url: str, token: str, gid: str, *, timeout: float = 5.0) -> AsanaTask | None:
    """The task, or None when Asana says it does not exist (deleted since the event)."""
    if not gid.isdigit():
        return None
    url = f"{base_url.rstrip('/')}/api/1.0/tasks/{gid}"
    try:
        async with httpx.AsyncClient(timeout=timeout) as http:
            response = await http.get(
                url,
                params={"opt_fields": "completed,completed_at,name"},
                headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            )
    except httpx.HTTPError as exc:
        raise AsanaError(f"Asana unreachable: {exc}") from exc
    if response.status_code == 404:
        return None
    if response.status_code != 200:
        errors = (
            response.json().get("errors", []) if "json" in response.headers.get("content-type", "") else []
        )
        message = "; ".join(str(e.get("message", "")) for e in errors) or response.text[:200]
        raise AsanaError(f"Asana answered {response.status_code}: {message}")
    data = response.json().get("data") or {}
    return AsanaTask(
        gid=str(data.get("gid", gid)),
        name=str(data.get("name", "")),
        completed=bool(data.get("completed")),
        completed_at=data.get("completed_at"),
    )
