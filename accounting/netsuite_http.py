"""NetSuite's REST channel: error bodies, the ``Location`` header, asynchronous jobs, the concurrency limit.

SuiteTalk REST answers a create or an upsert with ``204 No Content`` and the new record's URL in
``Location`` (Oracle, "Creating a Record Instance"), and an asynchronous request (``Prefer:
respond-async``) with ``202`` and the job's URL (``/services/rest/async/v1/job/<id>``, "Sending an
Asynchronous Request"), so unlike the other providers the headers matter: ``NetSuiteHttp`` is the shared
``ProviderHttp`` whose replies keep the status and ``Location``. Errors are RFC 7807-like bodies with
``o:errorDetails[].{detail, o:errorCode}`` ("Error Handling in REST Web Services").

NetSuite governs *concurrency* per account (web services and RESTlets together; 5 on a shared tier
without SuiteCloud Plus, +10 per licence: "Web Services and RESTlet Concurrency Governance"), not calls
per minute, so the policy is a concurrency cap plus a generous window. A call over the limit is refused:
HTTP 429 (what the REST web services answer, per Oracle's note on the AI connector's "Too Many
Requests"; the error code in that body was not found in the docs, the stand-in uses
``SSS_REQUEST_LIMIT_EXCEEDED``), or 400 with ``SSS_REQUEST_LIMIT_EXCEEDED`` (documented for RESTlets).
A 429 is waited out inline (``Retry-After`` when sent, which Oracle does not document, else a one-second
backoff: a slot frees as soon as any call ends), pausing the account's limiter for every task; the 400
form becomes ``RateLimited`` and the activity's retry waits it out.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from accounting.errors import AccountingError, NotFound, RateLimited, Transient, ValidationFailed
from accounting.http import HttpSettings, ProviderHttp, retry_after_seconds
from accounting.ratelimit import RateLimitPolicy

RECORD = "/services/rest/record/v1"
SUITEQL = "/services/rest/query/v1/suiteql"
ASYNC_JOB = "/services/rest/async/v1/job"
LIMIT_EXCEEDED = "SSS_REQUEST_LIMIT_EXCEEDED"
IDEMPOTENCY_ERROR = "IDEMPOTENCY_ERROR"
NOT_FOUND_CODES = ("NONEXISTENT_ID", "RCRD_DSNT_EXIST", "NOT_FOUND")
BACKOFF_S = 1.0


def netsuite_policy(concurrency: int) -> RateLimitPolicy:
    """The account's concurrency limit (``INVOICEFLOW_NETSUITE_CONCURRENCY``) and a polite window."""
    return RateLimitPolicy(windows=((600, 60.0),), max_concurrent=max(concurrency, 1), margin_s=0.0)


def netsuite_http_settings(timeout_s: float) -> HttpSettings:
    """More inline retries than the others with a short fallback: concurrency 429s clear in moments."""
    return HttpSettings(
        timeout_s=timeout_s, max_rate_limit_retries=8, max_inline_wait_s=15.0, rate_limit_fallback_s=BACKOFF_S
    )


class IdempotencyConflict(ValidationFailed):
    """``X-NetSuite-Idempotency-Key`` was used before: ``location`` is the earlier request's job."""

    def __init__(self, message: str, *, location: str) -> None:
        super().__init__(message, provider="netsuite", status_code=400, code=IDEMPOTENCY_ERROR)
        self.location = location


def error_from(status: int, body: Any, headers: Mapping[str, str]) -> AccountingError:
    """The connector error for one NetSuite error body (``o:errorDetails``), whatever the status."""
    details = body.get("o:errorDetails") if isinstance(body, dict) else None
    first = details[0] if isinstance(details, list) and details and isinstance(details[0], dict) else {}
    code = str(first.get("o:errorCode", ""))
    text = "; ".join(str(d.get("detail", "")) for d in details or [] if isinstance(d, dict))
    text = text or (str(body.get("title", "")) if isinstance(body, dict) else str(body or status))
    if code == LIMIT_EXCEEDED:
        wait = BACKOFF_S
        if headers.get("Retry-After"):
            wait = retry_after_seconds(httpx.Response(status, headers=dict(headers)), BACKOFF_S)
        return RateLimited(
            f"netsuite: {text}", retry_after_seconds=wait, problem="concurrent", provider="netsuite"
        )
    if code == IDEMPOTENCY_ERROR:
        return IdempotencyConflict(text, location=headers.get("Location", ""))
    if status == 404 or code in NOT_FOUND_CODES:
        return NotFound(text, provider="netsuite", status_code=status, code=code)
    if status >= 500:
        return Transient(f"netsuite: {status} {text}", provider="netsuite", status_code=status)
    return ValidationFailed(text, provider="netsuite", status_code=status, code=code)


def parse_netsuite_error(response: httpx.Response, body: Any) -> AccountingError:
    return error_from(response.status_code, body, response.headers)


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any
    location: str = ""

    @property
    def location_id(self) -> str:
        """The last path segment of ``Location`` (a record's internal id, or a job id)."""
        return self.location.rstrip("/").rsplit("/", 1)[-1] if self.location else ""


class NetSuiteHttp(ProviderHttp):
    """``ProviderHttp`` whose ``request`` returns a ``Reply`` (status, parsed body, ``Location``)."""

    def _result(self, method: str, path: str, response: httpx.Response) -> Any:
        body = super()._result(method, path, response)
        return Reply(response.status_code, body, response.headers.get("Location", ""))

    async def call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        reply = await self.request(method, path, params=params, body=body, headers=headers)
        assert isinstance(reply, Reply)
        return reply

    async def wait_for_job(self, location: str, *, timeout_s: float = 120.0, poll_s: float = 0.25) -> str:
        """Poll an asynchronous job until it completes; its job id, or the task's error raised."""
        job_id = location.rstrip("/").rsplit("/", 1)[-1]
        deadline = time.monotonic() + timeout_s
        while True:
            job = (await self.call("GET", f"{ASYNC_JOB}/{job_id}")).body or {}
            if job.get("completed"):
                break
            if time.monotonic() > deadline:
                raise Transient(f"netsuite: job {job_id} still {job.get('progress')}", provider="netsuite")
            await asyncio.sleep(poll_s)
        if str(job.get("progress", "")).lower() in ("failed", "error"):
            tasks = (await self.call("GET", f"{ASYNC_JOB}/{job_id}/task")).body or {}
            items = tasks.get("items") or [{}]
            task_id = str(items[0].get("id", job_id))
            result = (await self.call("GET", f"{ASYNC_JOB}/{job_id}/task/{task_id}/result")).body or {}
            status = int(result.get("status", 400)) if isinstance(result, dict) else 400
            raise error_from(status, result, {})
        return job_id
