"""BooksInboundWorkflow: one per accounting organisation, the books' changes flowing into invoiceflow.

It waits for two things: the books' webhooks (a signal per event, handed over by the webhook inbox's
dispatcher) and its poll timer (every ``poll_seconds``, the safety net for a missed or disabled
webhook; 0 turns polling off). Each is one activity: the activity reads the provider, records payments
on the invoices' own workflows (keyed by the provider's payment id, so a poll and a webhook reporting
the same payment record it once) and keeps everything else as a difference for an operator. The poll's
cursor lives in PostgreSQL and moves only after the changes it covers were recorded.

Deterministic: no I/O, no clock but ``workflow.now()``; it continues as new before its history grows
long, carrying the events not yet handled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

POLL_BOOKS = "poll_books"
APPLY_BOOKS_EVENTS = "apply_books_events"
BATCH = 50
ROUNDS_BEFORE_CONTINUE = 200
BOOKS_TIMEOUT = timedelta(minutes=5)
# Provider outages and 429s retry with backoff (the activity sets next_retry_delay on a 429).
BOOKS_RETRY = RetryPolicy(initial_interval=timedelta(seconds=2), maximum_interval=timedelta(minutes=10))
# Webhook events give up after a while (an event that cannot be read must not hold up the others): the
# poll, which retries without limit and moves its cursor only on success, finds what they named.
EVENTS_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2), maximum_interval=timedelta(minutes=2), maximum_attempts=12
)


def books_workflow_id(provider: str, tenant_id: str) -> str:
    return f"books-{provider}-{tenant_id}"


@dataclass
class BooksEvent:
    """A books webhook event, thin as the providers send them: which object changed."""

    event_id: str
    category: str  # payment | invoice | credit_note | contact
    resource_id: str


@dataclass
class BooksInboundInput:
    provider: str
    tenant_id: str
    poll_seconds: float = 900.0
    pending: list[BooksEvent] = field(default_factory=list)


@dataclass
class BooksEventsRequest:
    provider: str
    tenant_id: str
    events: list[BooksEvent]


@dataclass
class BooksPollRequest:
    provider: str
    tenant_id: str


@dataclass
class BooksOutcome:
    recorded: int = 0
    duplicates: int = 0
    ours: int = 0
    differences: int = 0
    detail: str = ""
    poll_seconds: float = 0.0  # the configured interval, so a changed setting takes effect at once


@workflow.defn(name="BooksInboundWorkflow")
class BooksInboundWorkflow:
    @workflow.init
    def __init__(self, input: BooksInboundInput) -> None:
        self._events: list[BooksEvent] = list(input.pending)
        self._seen: set[str] = set()
        self.polls = 0
        self.failures = 0
        self.last: BooksOutcome | None = None

    @workflow.signal
    def books_event(self, event: BooksEvent) -> None:
        if event.event_id not in self._seen:  # the dispatcher may hand an event over twice
            self._seen.add(event.event_id)
            self._events.append(event)

    @workflow.query
    def status(self) -> dict[str, object]:
        return {
            "polls": self.polls,
            "waiting": len(self._events),
            "failures": self.failures,
            "last": self.last,
        }

    def _failed(self, detail: str) -> None:
        self.failures += 1
        self.last = BooksOutcome(detail=detail[:500])
        workflow.logger.warning("books inbound: %s", detail)

    @workflow.run
    async def run(self, input: BooksInboundInput) -> None:
        interval = timedelta(seconds=input.poll_seconds) if input.poll_seconds > 0 else None
        next_poll = workflow.now() + interval if interval else None
        for _ in range(ROUNDS_BEFORE_CONTINUE):
            if not self._events:
                timeout = max(next_poll - workflow.now(), timedelta(0)) if next_poll else None
                try:
                    await workflow.wait_condition(lambda: bool(self._events), timeout=timeout)
                except TimeoutError:
                    pass
            if self._events:
                batch, self._events = self._events[:BATCH], self._events[BATCH:]
                try:
                    self.last = await workflow.execute_activity(
                        APPLY_BOOKS_EVENTS,
                        BooksEventsRequest(input.provider, input.tenant_id, batch),
                        result_type=BooksOutcome,
                        start_to_close_timeout=BOOKS_TIMEOUT,
                        retry_policy=EVENTS_RETRY,
                        summary=f"Books: {len(batch)} webhook event(s)",
                    )
                except ActivityError as err:
                    self._failed(f"webhook events: {err.cause or err}")
            if next_poll is not None and interval is not None and workflow.now() >= next_poll:
                try:
                    outcome = await workflow.execute_activity(
                        POLL_BOOKS,
                        BooksPollRequest(input.provider, input.tenant_id),
                        result_type=BooksOutcome,
                        start_to_close_timeout=BOOKS_TIMEOUT,
                        retry_policy=BOOKS_RETRY,
                        summary="Books: poll",
                    )
                    self.last, self.polls = outcome, self.polls + 1
                    if outcome.poll_seconds > 0:
                        interval = timedelta(seconds=outcome.poll_seconds)
                except ActivityError as err:  # non-retryable only: the books are not configured any more
                    self._failed(f"poll: {err.cause or err}")
                next_poll = workflow.now() + interval
            if workflow.info().is_continue_as_new_suggested():
                break
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(
            BooksInboundInput(input.provider, input.tenant_id, input.poll_seconds, list(self._events))
        )
