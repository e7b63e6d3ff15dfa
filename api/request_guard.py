"""What every request passes before any route reads its body (a pure ASGI middleware).

1. **Size first.** A request whose ``Content-Length`` is above its route's limit is answered 413 without
   reading a byte (Starlette's ``RequestBodyLimitMiddleware``, installed by FastAPI's ``max_body_size``,
   counts streamed bodies without a length the same way).
2. **Authentication before the body.** FastAPI reads and parses a route's JSON body before it runs the
   route's dependencies, so an operator route would read (up to the limit) and parse an anonymous body
   before saying 401. Here a request with a body is refused 401 unless it carries the operator bearer
   token or a user's token (``ifk_...``, looked up by the route), except on the public paths
   (``PUBLIC_PREFIXES``: webhook receivers, which verify their
   signature on the raw body before parsing it, and the token pages); each route's own dependency
   still checks the token as before.
3. **NUL characters** in the path or the query string are a 400 naming the parameter (PostgreSQL
   cannot store them; they never belong in an id or a filter).
4. **Token pages** (hosted invoice, approval and estimate links, the aging page) are sent with headers
   that keep the token out of referrers, frames, caches and content sniffing.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterable
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The console's forms (/app) check their session and CSRF token themselves; its login form is public.
PUBLIC_PREFIXES = (
    "/webhooks/",
    "/i/",
    "/approvals/",
    "/estimates/view/",
    "/healthz",
    "/accounting/oauth/",
    "/app",
)
#: A user's API token (``persistence.users``): its shape is checked here, the route's dependency looks it
#: up (reading a body of at most INVOICEFLOW_MAX_BODY_BYTES for a well-formed but wrong one).
USER_TOKEN_PREFIX = b"ifk_"
TOKEN_PAGE_PREFIXES = ("/i/", "/approvals/", "/estimates/view/", "/reports/aging/page")
TOKEN_PAGE_HEADERS = {
    "content-security-policy": "frame-ancestors 'none'",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
    "cache-control": "no-store",
}


async def _answer(
    send: Send, status: int, detail: object, headers: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RequestGuard:
    """Wraps the FastAPI app: ``app.add_middleware(RequestGuard, token=settings.api_token)``."""

    def __init__(self, app: ASGIApp, *, token: str) -> None:
        self.app = app
        self.token = token.encode()

    def _authenticated(self, scope: Scope) -> bool:
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                scheme, _, credentials = value.partition(b" ")
                token = credentials.strip()
                return scheme.lower() == b"bearer" and (
                    hmac.compare_digest(token, self.token) or token.startswith(USER_TOKEN_PREFIX)
                )
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        if "\x00" in path:
            await _answer(send, 400, [{"loc": ["path"], "msg": "the path contains a NUL character"}])
            return
        query = scope.get("query_string", b"")
        if b"%00" in query.lower() or b"\x00" in query:
            names = [
                k for k, v in parse_qsl(query.decode("latin-1"), keep_blank_values=True) if "\x00" in k + v
            ]
            loc = ["query", names[0] if names else "query"]
            await _answer(send, 400, [{"loc": loc, "msg": "the query contains a NUL character"}])
            return
        if self._has_body(scope) and not path.startswith(PUBLIC_PREFIXES) and not self._authenticated(scope):
            await _answer(
                send,
                401,
                "missing or wrong bearer token (Authorization: Bearer <INVOICEFLOW_API_TOKEN>)",
                [(b"www-authenticate", b"Bearer")],
            )
            return
        if path.startswith(TOKEN_PAGE_PREFIXES):
            send = self._with_page_headers(send)
        await self.app(scope, receive, send)

    @staticmethod
    def _has_body(scope: Scope) -> bool:
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                return value.strip() not in (b"0", b"")
            if name == b"transfer-encoding":
                return True
        return False

    @staticmethod
    def _with_page_headers(send: Send) -> Send:
        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [
                    (name.encode(), value.encode())
                    for name, value in TOKEN_PAGE_HEADERS.items()
                    if name.encode() not in present or name == "cache-control"
                ]
                kept = [(n, v) for n, v in message.get("headers", []) if n.lower() != b"cache-control"]
                message = {**message, "headers": kept + extra}
            await send(message)

        return wrapped
