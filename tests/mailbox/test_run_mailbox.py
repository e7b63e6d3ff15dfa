"""`run_mailbox` in a real process: serves SMTP and HTTP, and exits cleanly on SIGINT/SIGTERM."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from .helpers import invoice_message, send


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_run_mailbox_serves_and_stops_on_signal(tmp_path: Path, signum: signal.Signals) -> None:
    smtp_port, http_port = _free_port(), _free_port()
    code = (
        "from pathlib import Path; from invoiceflow.mailbox import run_mailbox; "
        f"run_mailbox(Path({str(tmp_path / 'mail')!r}), smtp_port={smtp_port}, http_port={http_port})"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, process.communicate()
            try:
                if httpx.get(f"http://127.0.0.1:{http_port}/api/messages", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "run_mailbox did not start serving HTTP"
            time.sleep(0.1)

        send(smtp_port, invoice_message("Via run_mailbox"), rcpt_tos=["b@example.com"])
        [item] = httpx.get(f"http://127.0.0.1:{http_port}/api/messages", timeout=5).json()
        assert (item["subject"], item["to"]) == ("Via run_mailbox", ["b@example.com"])

        process.send_signal(signum)
        stdout, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr, stderr
    assert f"SMTP 127.0.0.1:{smtp_port}" in stdout
    for port in (smtp_port, http_port):
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
    assert len(list((tmp_path / "mail").glob("*.eml"))) == 1
