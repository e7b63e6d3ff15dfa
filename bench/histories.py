"""What an invoice's Temporal history shows: its events, workflow tasks and activities, and where the
time between them went; the bare baseline is sized from these counts."""

from __future__ import annotations

import statistics
from collections import Counter
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client


async def life_events(client: Client, workflow_id: str) -> list[Any]:
    """Every event of a workflow's life, across its runs: a parked invoice continues as new."""
    events: list[Any] = []
    run_id: str | None = None
    while True:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        events[:0] = history.events
        run_id = history.events[0].workflow_execution_started_event_attributes.continued_execution_run_id
        if not run_id:
            return events


async def history_counts(client: Client, workflow_id: str) -> dict[str, int]:
    """What one workflow cost the server over its whole life (every run, as a parked invoice continues
    as new): its history events, workflow tasks and activities by kind."""
    events = await life_events(client, workflow_id)
    kinds = [event.event_type for event in events]
    markers = [
        event.marker_recorded_event_attributes.marker_name
        for event in events
        if event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
    ]
    return {
        "runs": kinds.count(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED),
        "events": len(kinds),
        "workflow_tasks": kinds.count(EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED),
        "activities": kinds.count(EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED),
        "local_activities": markers.count("core_local_activity"),
        "timers": kinds.count(EventType.EVENT_TYPE_TIMER_STARTED),
        "upserts": kinds.count(EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES)
        + kinds.count(EventType.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED),
    }


#: The start and end events of activity and workflow tasks, and the attributes that name their schedule.
_STARTED = {
    EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED: "activity_task_started_event_attributes",
    EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED: "workflow_task_started_event_attributes",
}


_COMPLETED = {
    EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED: "activity_task_completed_event_attributes",
    EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED: "workflow_task_completed_event_attributes",
}


async def activity_times(client: Client, workflow_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Where an invoice's life waits, from its histories: per activity type, the mean time from
    scheduled to started (queued for a slot or a poller) and from started to completed (running,
    retries included); and the same for workflow tasks. A life that leaves CPU idle waits somewhere.
    For activities also the mean attempt that completed and the most frequent failure retried."""
    times: dict[str, dict[str, list[float]]] = {}
    failures: dict[str, Counter[str]] = {}
    for workflow_id in workflow_ids:
        scheduled: dict[int, tuple[str, Any]] = {}
        started: dict[int, Any] = {}
        for event in await life_events(client, workflow_id):
            kind, at = event.event_type, event.event_time.ToDatetime()
            if kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                name = event.activity_task_scheduled_event_attributes.activity_type.name
                scheduled[event.event_id] = (name, at)
            elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
                scheduled[event.event_id] = ("workflow task", at)
            elif kind in _STARTED:
                ref = getattr(event, _STARTED[kind]).scheduled_event_id
                name, then = scheduled[ref]
                started[ref] = at
                times.setdefault(name, {"queued": [], "ran": []})["queued"].append(
                    (at - then).total_seconds()
                )
                if kind == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
                    attributes = event.activity_task_started_event_attributes
                    times[name].setdefault("attempts", []).append(attributes.attempt)
                    if attributes.attempt > 1:
                        failures.setdefault(name, Counter())[attributes.last_failure.message[:120]] += 1
            elif kind in _COMPLETED:
                ref = getattr(event, _COMPLETED[kind]).scheduled_event_id
                times[scheduled[ref][0]]["ran"].append((at - started[ref]).total_seconds())
    return {
        name: {
            f"{part}_ms": round(1000 * statistics.mean(values), 1)
            for part, values in parts.items()
            if values and part != "attempts"
        }
        | {"count": len(parts["queued"]) / max(len(workflow_ids), 1)}
        | ({"attempts": round(statistics.mean(parts["attempts"]), 2)} if parts.get("attempts") else {})
        | ({"retried_after": failures[name].most_common(1)[0][0]} if name in failures else {})
        for name, parts in sorted(times.items())
    }
