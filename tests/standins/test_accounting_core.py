"""The accounting stand-ins' shared core: a handler that raises must not keep its concurrency slot, or
after a few such errors every later call is a 429 and every sync stalls."""

from __future__ import annotations

from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from standins.accounting.common import Core, Quota, Replays, Tokens, Traffic, json_response


class _Flavor:
    def unauthorized(self, reason: str) -> Response:
        return json_response(401, {"error": reason})

    def unavailable(self) -> Response:
        return json_response(503, {"error": "unavailable"})

    def rate_limited(self, tenant: str, problem: str, retry_after: int | None) -> Response:
        return json_response(429, {"error": problem})

    def replay_mismatch(self) -> Response:
        return json_response(400, {"error": "replay"})

    def headers(self, tenant: str) -> dict[str, str]:
        return {}


def _app(core: Core) -> Starlette:
    def broken(body: Any) -> tuple[int, Any]:
        raise KeyError("a bug in the handler")

    async def fails(request: Request) -> Response:
        return await core.handle(request, _Flavor(), tenant="org", write=True, handler=broken)

    async def works(request: Request) -> Response:
        return await core.handle(request, _Flavor(), tenant="org", write=True, handler=lambda body: (200, {}))

    return Starlette(
        routes=[Route("/fails", fails, methods=["POST"]), Route("/works", works, methods=["POST"])]
    )


async def test_a_handler_that_raises_releases_its_concurrency_slot() -> None:
    core = Core(Tokens({"t"}), Traffic(Quota(per_window=1000, window_s=60, concurrent=2)), Replays(None))
    transport = httpx.ASGITransport(app=_app(core), raise_app_exceptions=False)
    headers = {"Authorization": "Bearer t"}
    async with httpx.AsyncClient(transport=transport, base_url="http://standin") as client:
        for _ in range(5):
            assert (await client.post("/fails", headers=headers)).status_code == 500
        answer = await client.post("/works", headers=headers)
    assert answer.status_code == 200, answer.text
    assert core.traffic.in_flight["org"] == 0
    assert [c.status for c in core.calls] == [500] * 5 + [200]  # the failed calls are in the log too
