"""Serve an ASGI app on a loopback port in a background thread: real HTTP for stand-ins and tests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServedApp:
    """A running uvicorn server; `base_url` is where clients point their base-URL setting."""

    def __init__(
        self, app: Any, *, host: str = "127.0.0.1", port: int | None = None, lifespan: str = "off"
    ) -> None:
        self.host = host
        self.port = port or free_port()
        self.app = app
        self._server = uvicorn.Server(
            uvicorn.Config(app, host=host, port=self.port, log_level="warning", lifespan=lifespan)
        )
        self._thread = threading.Thread(target=self._server.run, name=f"standin-{self.port}", daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> ServedApp:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"stand-in on port {self.port} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


@contextmanager
def serve(app: Any, *, host: str = "127.0.0.1", port: int | None = None) -> Iterator[ServedApp]:
    """`with serve(app) as served: httpx.get(served.base_url + ...)`."""
    served = ServedApp(app, host=host, port=port).start()
    try:
        yield served
    finally:
        served.stop()
