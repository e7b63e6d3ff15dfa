"""NetSuite SuiteTalk REST stand-in: ``/services/rest/record/v1``, ``/query/v1/suiteql``, ``/async/v1/job``
and the OAuth 2.0 token endpoint, on one host (as ``<account>.suitetalk.api.netsuite.com`` serves them).

Faithful where the connector depends on it (Oracle's REST web services guide, see ``accounting.netsuite``):

- **M2M token endpoint**: ``client_credentials`` with a ``client_assertion`` JWT whose signature is checked
  against the certificate registered for its ``kid`` (PS/ES algorithms only), ``iss`` = the mapped client
  id, ``aud`` = this endpoint, ``scope`` with ``rest_webservices``, ``exp`` within 60 minutes of ``iat``.
  The access tokens it issues last 3600 s and are the only ones the API accepts (Bearer).
- **Records**: ``GET``/``PUT eid:`` (upsert)/``PATCH`` by internal id or ``eid:``, ``POST`` creates
  (``204`` + ``Location``), ``!transform/creditMemo`` on an invoice, ``expandSubResources``.
- **Asynchronous requests** (``Prefer: respond-async``): ``202`` + the job's ``Location``; a reused
  ``X-NetSuite-Idempotency-Key`` → 400 ``IDEMPOTENCY_ERROR`` with the earlier job's ``Location``.
- **Errors** ``{"type", "title", "status", "o:errorDetails": [{"detail", "o:errorCode"}]}``; the account's
  concurrency limit (``concurrency``) answered with 429 ``SSS_REQUEST_LIMIT_EXCEEDED`` and no Retry-After.
- **Switches** (``faults``): ``inject_429`` (a 429 storm, with Retry-After), ``commit_then_hang`` (a write
  commits, then its answer waits: the client times out on a write that happened), ``unavailable_for``.
"""

from __future__ import annotations

import asyncio
import time
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from accounting import jsonnum
from standins.accounting.common import (
    Core,
    Faults,
    Quota,
    RecordedCall,
    Replays,
    Tokens,
    Traffic,
    json_response,
)
from standins.accounting.netsuite_books import Books, Refused
from standins.accounting.netsuite_keys import key_pair
from standins.accounting.netsuite_render import render
from standins.accounting.netsuite_suiteql import run as run_suiteql

TOKEN_PATH = "/services/rest/auth/oauth2/v1/token"
RECORD = "/services/rest/record/v1"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ALGORITHMS = ["PS256", "PS384", "PS512", "ES256", "ES384", "ES512"]
_TYPES = {
    400: ("https://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html#sec10.4.1", "Bad Request"),
    401: ("https://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html#sec10.4.2", "Unauthorized"),
    404: ("https://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html#sec10.4.5", "Not Found"),
    429: ("https://tools.ietf.org/html/rfc6585#section-4", "Too Many Requests"),
    503: ("https://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html#sec10.5.4", "Service Unavailable"),
}


def error_body(status: int, code: str, detail: str) -> dict[str, Any]:
    kind, title = _TYPES.get(status, _TYPES[400])
    return {
        "type": kind,
        "title": title,
        "status": status,
        "o:errorDetails": [{"detail": detail, "o:errorCode": code}],
    }


def error(status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> Response:
    return json_response(status, error_body(status, code, detail), headers)


@dataclass
class Mapping:
    """One OAuth 2.0 Client Credentials (M2M) mapping: certificate id → its public key and client id."""

    client_id: str
    public_key: Any


@dataclass
class NetSuiteState:
    account_id: str = "TSTDRV1234567"
    concurrency: int = 5
    tokens: set[str] = field(default_factory=set)
    books: Books = field(default_factory=Books)
    mappings: dict[str, Mapping] = field(default_factory=dict)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    idempotency: dict[str, str] = field(default_factory=dict)  # key → job id
    token_requests: list[dict[str, str]] = field(default_factory=list)
    token_refusals: list[str] = field(default_factory=list)
    hung: list[str] = field(default_factory=list)  # writes that committed, then answered late
    core: Core = field(init=False)

    def __post_init__(self) -> None:
        quota = Quota(per_window=1_000_000, window_s=60.0, concurrent=self.concurrency)
        self.core = Core(Tokens(self.tokens), Traffic(quota), Replays(None))

    @property
    def faults(self) -> Faults:
        return self.core.faults

    @property
    def calls(self) -> list[RecordedCall]:
        return self.core.calls

    def register_certificate(self, certificate_id: str, pem: str | bytes, client_id: str) -> None:
        """Upload the public part of a certificate (or a bare public key) for ``client_id``."""
        from cryptography import x509
        from cryptography.hazmat.primitives.serialization import load_pem_public_key

        data = pem.encode() if isinstance(pem, str) else pem
        key = (
            x509.load_pem_x509_certificate(data).public_key()
            if b"CERTIFICATE" in data
            else load_pem_public_key(data)
        )
        with self.core.lock:
            self.mappings[certificate_id] = Mapping(client_id, key)

    def calls_to(self, method: str, path_part: str) -> list[RecordedCall]:
        with self.core.lock:
            return [c for c in self.calls if c.method == method and path_part in c.path]

    # --- the token endpoint ------------------------------------------------------------------------

    def _grant(self, form: dict[str, str], audience: str) -> tuple[int, dict[str, Any]]:
        import jwt

        if form.get("grant_type") != "client_credentials":
            return 400, {"error": "unsupported_grant_type"}
        if form.get("client_assertion_type") != ASSERTION_TYPE or not form.get("client_assertion"):
            return 400, {"error": "invalid_request"}
        assertion = form["client_assertion"]
        try:
            header = jwt.get_unverified_header(assertion)
            mapping = self.mappings.get(str(header.get("kid")))
            if mapping is None or header.get("alg") not in ALGORITHMS:
                raise jwt.InvalidTokenError(
                    f"no active mapping for kid {header.get('kid')} / {header.get('alg')}"
                )
            claims = jwt.decode(
                assertion,
                mapping.public_key,
                algorithms=ALGORITHMS,
                audience=audience,
                options={"require": ["iss", "aud", "exp", "iat", "scope"]},
            )
        except jwt.PyJWTError as exc:
            self.token_refusals.append(f"{type(exc).__name__}: {exc}")
            return 400, {"error": "invalid_client"}
        if claims["iss"] != mapping.client_id or int(claims["exp"]) - int(claims["iat"]) > 3600:
            self.token_refusals.append("iss or lifetime")
            return 400, {"error": "invalid_client"}
        if "rest_webservices" not in [s.strip() for s in str(claims["scope"]).split(",")]:
            return 400, {"error": "invalid_scope"}
        token = f"ns-at-{uuid.uuid4().hex}"
        self.core.tokens.issue(token)
        return 200, {"access_token": token, "expires_in": "3600", "token_type": "bearer"}

    async def token_endpoint(self, request: Request) -> Response:
        form = dict(urllib.parse.parse_qsl((await request.body()).decode("utf-8", "replace")))
        audience = str(request.url.replace(query=""))
        with self.core.lock:
            self.token_requests.append(form)
            status, payload = self._grant(form, audience)
        return json_response(status, payload, {"Cache-Control": "no-store"})

    # --- the request pipeline ----------------------------------------------------------------------

    async def serve(
        self, request: Request, handler: Callable[[Any], tuple[int, Any, str]], *, write: bool
    ) -> Response:
        """Auth → outage → 429 storm → concurrency → (async job) → handler → hang after commit."""
        raw = await request.body()
        call = RecordedCall(
            method=request.method,
            path=request.url.path,
            query=dict(request.query_params),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=raw,
        )
        response, hang = self._respond(call, handler, write)
        try:
            if hang:
                await asyncio.sleep(hang)
        finally:
            with self.core.lock:
                if call.admitted:
                    self.core.traffic.done(self.account_id)
                call.status, call.response = response.status_code, bytes(response.body)
                self.core.calls.append(call)
        return response

    def _respond(
        self, call: RecordedCall, handler: Callable[[Any], tuple[int, Any, str]], write: bool
    ) -> tuple[Response, float]:
        with self.core.lock:
            if self.core.tokens.check(call.headers.get("authorization", "")) != "ok":
                detail = (
                    "Invalid login attempt. For more details, see the Login Audit Trail in the NetSuite UI "
                    "at Setup > Users/Roles > User Management > View Login Audit Trail."
                )
                return error(401, "INVALID_LOGIN", detail, {"WWW-Authenticate": "Bearer"}), 0.0
            faults = self.core.faults
            if time.monotonic() < faults.unavailable_until:
                return error(503, "UNEXPECTED_ERROR", "Service temporarily unavailable."), 0.0  # [K]
            limited = "Concurrent request limit exceeded. Request blocked."  # [K]
            if faults.rate_limit_next > 0:
                faults.rate_limit_next -= 1
                headers = {} if faults.retry_after is None else {"Retry-After": str(faults.retry_after)}
                return error(429, "SSS_REQUEST_LIMIT_EXCEEDED", limited, headers), 0.0
            if self.core.traffic.admit(self.account_id, time.monotonic()) is not None:
                return error(429, "SSS_REQUEST_LIMIT_EXCEEDED", limited), 0.0
            call.admitted = True
            try:
                body = jsonnum.loads(call.body) if call.body else None
            except ValueError:
                return error(400, "INVALID_CONTENT", "The request body is not valid JSON."), 0.0  # [K]
            asynchronous = write and "respond-async" in call.headers.get("prefer", "")
            key = call.headers.get("x-netsuite-idempotency-key", "") if asynchronous else ""
            if key and key in self.idempotency:
                detail = (
                    'A request with the same idempotency key is already submitted. See the "Location" header'
                )
                location = f"/services/rest/async/v1/job/{self.idempotency[key]}"
                return error(400, "IDEMPOTENCY_ERROR", detail, {"Location": location}), 0.0
            try:
                status, payload, location = handler(body)
            except Refused as refused:
                status, payload, location = (
                    refused.status,
                    error_body(refused.status, refused.code, refused.detail),
                    "",
                )
            if asynchronous:
                job = self._job(status, payload, location)
                if key:
                    self.idempotency[key] = job
                status, payload, location = 202, None, f"/services/rest/async/v1/job/{job}"
            hang = 0.0
            if write and 200 <= status < 300 and faults.hang_writes > 0:
                faults.hang_writes -= 1
                hang = faults.hang_seconds
                self.hung.append(f"{call.method} {call.path}")
            headers = {"Location": location} if location else {}
            if payload is None:
                return Response(status_code=status, headers=headers), hang
            return json_response(status, payload, headers), hang

    def _job(self, status: int, payload: Any, location: str) -> str:
        job = self.books.new_id()
        ok = 200 <= status < 300
        self.jobs[job] = {
            "progress": "succeeded" if ok else "failed",
            "status": status,
            "payload": payload,
            "location": location,
        }
        return job


__all__ = ["NetSuiteState", "create_netsuite_app", "key_pair"]


def create_netsuite_app(state: NetSuiteState | None = None) -> tuple[Starlette, NetSuiteState]:
    """The ASGI app and its inspectable state; serve with ``standins.server.serve``."""
    state = state or NetSuiteState()
    books = state.books

    def url(kind: str, internal: str) -> str:
        return f"{RECORD}/{kind}/{internal}"

    async def record(request: Request) -> Response:
        kind, ref = request.path_params["kind"].lower(), request.path_params.get("ref", "")
        if kind not in books.records:
            return error(404, "NONEXISTENT_ID", f"Record type '{kind}' does not exist.")
        method = request.method

        def handle(body: Any) -> tuple[int, Any, str]:
            body = body if isinstance(body, dict) else {}
            if method == "GET":
                expand = request.query_params.get("expandSubResources") == "true"
                return 200, render(books, kind, books.get(kind, ref), expand=expand), ""
            if method == "POST":
                return 204, None, url(kind, books.upsert(kind, body.get("externalId"), body))
            if method == "PUT":
                if not ref.startswith("eid:"):
                    raise Refused(
                        400, "INVALID_REQUEST", "Upsert is supported only with an external ID in the URL."
                    )  # [K]
                replace = frozenset(request.query_params.get("replace", "").lower().split(","))
                return 204, None, url(kind, books.upsert(kind, ref[4:], body, replace))
            return 204, None, url(kind, books.patch(kind, ref, body))

        return await state.serve(request, handle, write=method != "GET")

    async def transform(request: Request) -> Response:
        kind, ref, target = (request.path_params[k] for k in ("kind", "ref", "target"))

        def handle(body: Any) -> tuple[int, Any, str]:
            if kind.lower() != "invoice" or target.lower() != "creditmemo":
                raise Refused(
                    400, "INVALID_TRANSFORM", f"Transformation {kind} → {target} is not supported."
                )  # [K]
            return 204, None, url("creditmemo", books.transform_to_credit_memo(ref, body or {}))

        return await state.serve(request, handle, write=True)

    async def suiteql(request: Request) -> Response:
        def handle(body: Any) -> tuple[int, Any, str]:
            if "transient" not in request.headers.get("prefer", ""):
                raise Refused(
                    400, "INVALID_HEADER", "The Prefer header must be 'transient' for SuiteQL queries."
                )  # [K]
            query = (body or {}).get("q") if isinstance(body, dict) else None
            if not isinstance(query, str):
                raise Refused(
                    400, "INVALID_CONTENT", "The request body must contain the query in 'q'."
                )  # [K]
            rows = run_suiteql(books, query)
            limit = min(int(request.query_params.get("limit", "1000")), 1000)
            offset = int(request.query_params.get("offset", "0"))
            page = rows[offset : offset + limit]
            items = [{"links": [], **row} for row in page]
            return (
                200,
                {
                    "links": [],
                    "count": len(items),
                    "hasMore": offset + len(items) < len(rows),
                    "items": items,
                    "offset": offset,
                    "totalResults": len(rows),
                },
                "",
            )

        return await state.serve(request, handle, write=False)

    async def job(request: Request) -> Response:
        job_id, part = request.path_params["job"], request.path_params.get("part", "")

        def handle(_: Any) -> tuple[int, Any, str]:
            found = state.jobs.get(job_id)
            if found is None:
                raise Refused(404, "NONEXISTENT_ID", f"Job {job_id} does not exist.")
            if part == "task":
                return 200, {"items": [{"id": job_id, "links": []}], "count": 1, "hasMore": False}, ""
            if part == "result":
                return 200, found["payload"] or {"links": [{"rel": "related", "href": found["location"]}]}, ""
            return (
                200,
                {
                    "id": job_id,
                    "completed": True,
                    "progress": found["progress"],
                    "links": [],
                    "task": {
                        "links": [{"rel": "self", "href": f"/services/rest/async/v1/job/{job_id}/task"}]
                    },
                },
                "",
            )

        return await state.serve(request, handle, write=False)

    async def task_result(request: Request) -> Response:
        request.path_params["part"] = "result"
        return await job(request)

    async def task_list(request: Request) -> Response:
        request.path_params["part"] = "task"
        return await job(request)

    app = Starlette(
        routes=[
            Route(TOKEN_PATH, state.token_endpoint, methods=["POST"]),
            Route("/services/rest/query/v1/suiteql", suiteql, methods=["POST"]),
            Route("/services/rest/async/v1/job/{job}", job, methods=["GET"]),
            Route("/services/rest/async/v1/job/{job}/task", task_list, methods=["GET"]),
            Route("/services/rest/async/v1/job/{job}/task/{task}/result", task_result, methods=["GET"]),
            Route(RECORD + "/{kind}/{ref}/!transform/{target}", transform, methods=["POST"]),
            Route(RECORD + "/{kind}", record, methods=["POST"]),
            Route(RECORD + "/{kind}/{ref}", record, methods=["GET", "PUT", "PATCH"]),
        ]
    )
    return app, state
