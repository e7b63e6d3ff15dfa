"""Asana stand-in: `GET /api/1.0/tasks/{gid}` with a personal access token, Asana's error bodies."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

DEFAULT_TOKEN = "2/1200000000000001/1209999999999999:standin"


@dataclass
class AsanaState:
    token: str = DEFAULT_TOKEN
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: int = 0

    def add_task(self, gid: str, name: str, *, completed: bool) -> None:
        self.tasks[gid] = {
            "gid": gid,
            "resource_type": "task",
            "name": name,
            "completed": completed,
            "completed_at": "2026-11-25T09:00:00.000Z" if completed else None,
        }


def _errors(status: int, message: str) -> JSONResponse:
    return JSONResponse(
        {
            "errors": [
                {
                    "message": message,
                    "help": "For more information on API status codes and how to handle "
                    "them, read the docs on errors: https://developers.asana.com/docs/errors",
                }
            ]
        },
        status_code=status,
    )


def create_asana_standin(token: str = DEFAULT_TOKEN) -> tuple[FastAPI, AsanaState]:
    state = AsanaState(token=token)
    app = FastAPI(title="Asana stand-in")

    @app.get("/api/1.0/tasks/{gid}")
    def get_task(gid: str, request: Request, opt_fields: str = "") -> JSONResponse:
        state.calls += 1
        if request.headers.get("authorization") != f"Bearer {state.token}":
            return _errors(401, "Not Authorized")
        task = state.tasks.get(gid)
        if task is None:
            return _errors(404, f"{gid}: Unknown object: {gid}")
        fields = [f for f in opt_fields.split(",") if f] or list(task)
        return JSONResponse({"data": {"gid": gid, **{f: task.get(f) for f in fields}}})

    return app, state
