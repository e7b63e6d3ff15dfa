"""The webhook inbox's dispatcher: hands routed events to their project workflows (transactional inbox).

A receiver answers 2xx as soon as the event is recorded and routed in PostgreSQL, in one transaction:
from then on the event is durably accepted. This dispatcher does the rest, either as a background task of
each API process (started and stopped with the app, ``INVOICEFLOW_DISPATCHER_IN_API``, the default) or in
`invoiceflow dispatcher` processes of their own (`api.webhooks.dispatcher_process`), where its hand-overs
take no time from the receivers' event loop:

- it **claims** routed rows still ``received`` (``dispatching_until`` leases them, taken in one
  ``UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED)``), so API replicas never hand over the
  same row at once, and a row whose dispatcher died is taken again once its lease runs out;
- **hands** each to Temporal with signal-with-start on its project's workflow, the batch concurrently;
- **marks** the batch ``dispatched`` in one UPDATE.

It runs as soon as a receiver commits (`wake` in the same process, a PostgreSQL NOTIFY sent at commit for
dispatcher processes, `wake_in`), and sweeps at start and every few
seconds for rows left behind (a crash between commit and hand-over, another replica's expired lease, an
outage). While Temporal is unreachable the rows stay ``received`` with the error in their note and the
dispatcher backs off, doubling the wait up to a cap.

Handing a trigger over twice (a lease that ran out mid-call, a crash after the call and before the mark,
an operator's replay racing the dispatcher) is harmless: ProjectBillingWorkflow skips event keys it has
seen, and billing a deposit or milestone happens once whatever the workflow is told.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy.orm import Session
from temporalio.client import Client
from temporalio.service import RPCError

from api.deps import Db
from core.settings import Settings
from observability import tracing
from persistence import books_inbound as books_repo
from persistence import webhook_inbox as inbox
from persistence.webhook_inbox import Route
from workflows.payloads import ProjectTrigger, ProjectWorkflowInput, project_workflow_id
from workflows.project import ProjectBillingWorkflow

log = logging.getLogger("invoiceflow.api.webhooks.dispatcher")

BATCH = 100  # rows claimed per statement; a pass claims again until nothing is left
LEASE_S = 30.0  # longer than a hand-over can take (RPC_TIMEOUT_S), short enough for a crash to heal soon
RPC_TIMEOUT_S = 10.0
SWEEP_S = 5.0
BACKOFF_INITIAL_S = 0.5
BACKOFF_MAX_S = 30.0
STOP_GRACE_S = 5.0


class TemporalUnavailable(Exception):
    """The hand-over to Temporal failed (server down, not yet connected, overloaded)."""


async def signal_with_start(
    temporal: Client, settings: Settings, target: Route, trigger: ProjectTrigger
) -> None:
    """Signal-with-start: the project's workflow gets the trigger whether or not it is running."""
    try:
        await _signal_with_start(temporal, settings, target, trigger)
    except RPCError as exc:
        raise TemporalUnavailable(exc.message) from exc
    except RuntimeError as exc:  # a lazy client that cannot connect raises this, not an RPCError
        raise TemporalUnavailable(str(exc)) from exc


async def _signal_with_start(
    temporal: Client, settings: Settings, target: Route, trigger: ProjectTrigger
) -> None:
    await temporal.start_workflow(
        ProjectBillingWorkflow.run,
        ProjectWorkflowInput(project_id=str(target.project_id), deal=target.deal),
        id=project_workflow_id(str(target.project_id)),
        task_queue=settings.task_queue,
        start_signal="trigger",
        start_signal_args=[trigger],
    )


@dataclass
class Pass:
    """What one dispatch pass did: the ids handed over, and the failed ones with their error."""

    dispatched: list[uuid.UUID] = field(default_factory=list)
    failed: dict[uuid.UUID, str] = field(default_factory=dict)


class InboxDispatcher:
    def __init__(
        self,
        db: Db,
        temporal: Callable[[], Client],
        settings: Settings,
        *,
        sweep_s: float = SWEEP_S,
        backoff_initial_s: float = BACKOFF_INITIAL_S,
        backoff_max_s: float = BACKOFF_MAX_S,
        lease_s: float = LEASE_S,
        rpc_timeout_s: float = RPC_TIMEOUT_S,
        batch: int = BATCH,
        gather_s: float = 0.0,
    ) -> None:
        self._db, self._temporal, self._settings = db, temporal, settings
        self.sweep_s, self.lease_s, self.rpc_timeout_s, self.batch = sweep_s, lease_s, rpc_timeout_s, batch
        self.backoff_initial_s, self.backoff_max_s = backoff_initial_s, backoff_max_s
        self.gather_s = gather_s  # wait after a wake-up, so a burst of commits is handed over in one pass
        self.backoff_s = 0.0  # the current wait after a pass that handed nothing over; 0 while all is well
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """A receiver committed a routed event: hand it over now, not at the next sweep."""
        self._wake.set()

    def notifies_processes(self) -> bool:
        """Whether receivers wake dispatcher processes through PostgreSQL (`inbox.record_routed`), which
        they do when the hand-over runs outside the API; in the API, `wake` after the commit does it."""
        return not self._settings.dispatcher_in_api

    def wake_in(self, session: Session) -> None:
        """A receiver routed an event in this transaction: when the dispatcher runs in processes of its
        own, they are woken as it commits (in the API, `wake` after the commit does it)."""
        if self.notifies_processes():
            inbox.notify_dispatchers(session)

    def start(self) -> None:
        if self._task is None:
            self._stop.clear()
            self._task = asyncio.create_task(self._run(), name="webhook-inbox-dispatcher")

    async def stop(self) -> None:
        """One last pass (a pass under way finishes first), then end; at most `STOP_GRACE_S`. Rows a
        cut-short pass had claimed wait for their lease to run out, then any dispatcher takes them."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stop.set()
        try:
            await asyncio.wait_for(task, STOP_GRACE_S)
        except TimeoutError:
            pass  # wait_for has cancelled it

    async def dispatch(
        self,
        ids: Sequence[uuid.UUID] | None = None,
        *,
        note: str = "",
        ignore_leases: bool = False,
        retry_in_s: float | None = None,
    ) -> Pass:
        """One pass: claim routed ``received`` rows (these `ids` only, if given), hand them over, mark them.

        Claims again while full batches come back, so a backlog drains in one pass. Rows whose hand-over
        failed keep the error in their note and are not claimed again for `retry_in_s`."""
        result = Pass()
        retry_in = retry_in_s if retry_in_s is not None else self._next_backoff()
        if ids is not None:
            for i in range(0, len(ids), self.batch):
                await self._batch(result, list(ids[i : i + self.batch]), note, ignore_leases, retry_in)
                await self._books_batch(result, list(ids[i : i + self.batch]), note, ignore_leases, retry_in)
            return result
        while await self._batch(result, None, note, ignore_leases, retry_in) == self.batch:
            pass
        while await self._books_batch(result, None, note, ignore_leases, retry_in) == self.batch:
            pass
        return result

    async def _books_batch(
        self, result: Pass, ids: list[uuid.UUID] | None, note: str, ignore_leases: bool, retry_in_s: float
    ) -> int:
        """The books lane: accounting webhook events go to their organisation's BooksInboundWorkflow."""
        claimed = await self._db.run(
            lambda s: books_repo.claim_events(
                s, lease_s=self.lease_s, limit=self.batch, ids=ids, ignore_leases=ignore_leases
            )
        )
        if not claimed:
            return 0
        errors = await asyncio.gather(*(self._hand_over_books(event) for event in claimed))
        done = [e.event_id for e, error in zip(claimed, errors, strict=True) if error is None]
        failed = {e.event_id: error for e, error in zip(claimed, errors, strict=True) if error is not None}

        def record(session: Session) -> None:
            if done:
                inbox.mark_dispatched(session, done, note=note)
            for event_id, error in failed.items():
                inbox.hand_over_failed(session, [event_id], error, retry_in_s=retry_in_s)

        await self._db.run(record)
        result.dispatched += done
        result.failed.update(failed)
        return len(claimed)

    async def _hand_over_books(self, event: books_repo.ClaimedEvent) -> str | None:
        from services.books_workflow import hand_over
        from workflows.books import BooksEvent

        books_event = BooksEvent(str(event.event_id), event.category, event.resource_id)
        try:
            await asyncio.wait_for(
                hand_over(self._temporal(), self._settings, event.provider, event.tenant_id, books_event),
                self.rpc_timeout_s,
            )
        except (RPCError, RuntimeError) as exc:
            return f"Temporal is unavailable: {exc}"
        except TimeoutError:
            return f"Temporal is unavailable: no answer in {self.rpc_timeout_s:g} s"
        return None

    async def _batch(
        self, result: Pass, ids: list[uuid.UUID] | None, note: str, ignore_leases: bool, retry_in_s: float
    ) -> int:
        """Claim one batch, hand it over (in order per project), record the outcome in one transaction."""
        claimed = await self._db.run(
            lambda s: inbox.claim(
                s, lease_s=self.lease_s, limit=self.batch, ids=ids, ignore_leases=ignore_leases
            )
        )
        if not claimed:
            return 0
        traces = (
            await self._db.run(lambda s: inbox.summaries(s, [c[0] for c in claimed]))
            if tracing.enabled()
            else {}
        )
        errors = await self._hand_over_in_order(claimed, traces)
        done: list[uuid.UUID] = []
        by_error: dict[str, list[uuid.UUID]] = {}
        for (event_id, _, _), error in zip(claimed, errors, strict=True):
            if error is None:
                done.append(event_id)
            else:
                by_error.setdefault(error, []).append(event_id)
                result.failed[event_id] = error

        def record(session: Session) -> None:
            if done:
                inbox.mark_dispatched(session, done, note=note)
            for error, failed in by_error.items():
                inbox.hand_over_failed(session, failed, error, retry_in_s=retry_in_s)

        await self._db.run(record)
        result.dispatched += done
        return len(claimed)

    async def _hand_over_in_order(
        self,
        claimed: list[tuple[uuid.UUID, Route, ProjectTrigger]],
        traces: dict[uuid.UUID, dict[str, object]],
    ) -> list[str | None]:
        """Hand a batch over: one project's events one after another, in the order they were received
        (a milestone reported before the signature bills as such), different projects concurrently. Once
        one of a project's events fails, its later events wait for the next pass rather than overtake."""
        errors: list[str | None] = [None] * len(claimed)
        lanes: dict[str, list[int]] = {}
        for index, (_, target, _) in enumerate(claimed):
            lanes.setdefault(str(target.project_id), []).append(index)

        async def lane(indices: list[int]) -> None:
            for position, index in enumerate(indices):
                event_id, target, trigger = claimed[index]
                error = await self._hand_over(target, trigger, traces.get(event_id))
                if error is not None:
                    errors[index] = error
                    for later in indices[position + 1 :]:
                        errors[later] = (
                            f"waiting: an earlier event of this project was not handed over ({error})"
                        )
                    return

        await asyncio.gather(*(lane(indices) for indices in lanes.values()))
        return errors

    async def _hand_over(
        self, target: Route, trigger: ProjectTrigger, summary: dict[str, object] | None = None
    ) -> str | None:
        try:
            with tracing.continued(summary):  # the webhook request's trace goes on into the workflow
                await asyncio.wait_for(
                    signal_with_start(self._temporal(), self._settings, target, trigger), self.rpc_timeout_s
                )
        except TemporalUnavailable as exc:
            return f"Temporal is unavailable: {exc}"
        except TimeoutError:
            return f"Temporal is unavailable: no answer in {self.rpc_timeout_s:g} s"
        return None

    def _next_backoff(self) -> float:
        return min(self.backoff_max_s, self.backoff_s * 2 if self.backoff_s else self.backoff_initial_s)

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            result = Pass()
            try:
                result = await self.dispatch()
                stalled = bool(result.failed) and not result.dispatched
                if result.failed:
                    log.warning(
                        "webhook inbox: %d event(s) handed over, %d not (%s)",
                        len(result.dispatched),
                        len(result.failed),
                        next(iter(result.failed.values())),
                    )
            except Exception:  # the database is unreachable, say: keep the task alive and try again
                log.exception("webhook inbox: dispatch pass failed")
                stalled = True
            if self._stop.is_set():
                return  # that was the last pass: what this process accepted is handed over
            if stalled:
                # Nothing got through: wait, doubling the wait up to the cap (the failed rows wait as long).
                # Wake-ups wait too: hammering a server that is down helps nobody, and the events are safe
                # in the inbox meanwhile.
                self.backoff_s = self._next_backoff()
                await self._idle(self.backoff_s, wakeable=False)
            else:
                if result.dispatched:
                    self.backoff_s = 0.0  # Temporal answers again
                # A pass that found nothing due leaves the backoff be: only a hand-over shows Temporal is
                # back.
                await self._idle(min(self.sweep_s, self.backoff_s or self.sweep_s), wakeable=True)
                if self.gather_s and self._wake.is_set() and not self._stop.is_set():
                    # Woken by one commit: let the next few join it, one pass (claim, hand over, mark) for
                    # the lot instead of one each.
                    await asyncio.sleep(self.gather_s)

    async def _idle(self, seconds: float, *, wakeable: bool) -> None:
        waits = [asyncio.ensure_future(self._stop.wait())]
        if wakeable:
            waits.append(asyncio.ensure_future(self._wake.wait()))
        try:
            await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waits:
                waiter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*waits, return_exceptions=True)
