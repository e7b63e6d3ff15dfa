"""``invoiceflow mailbox``: SMTP and the viewer in the foreground until SIGINT/SIGTERM."""

from __future__ import annotations

import logging
import signal
from pathlib import Path

import uvicorn

from invoiceflow.mailbox.smtp import DevMailbox
from invoiceflow.mailbox.store import MailStore
from invoiceflow.mailbox.viewer import create_viewer_app, url_host

log = logging.getLogger("invoiceflow.mailbox")


def run_mailbox(
    store_dir: Path, smtp_port: int = 1025, http_port: int = 8025, host: str = "127.0.0.1"
) -> None:
    """Run the SMTP server (background thread) and the viewer (uvicorn, this thread) until SIGINT/SIGTERM.

    Returns normally after a signal, with both servers stopped. Must be called from the main thread.
    """
    store = MailStore(store_dir)
    server = uvicorn.Server(
        uvicorn.Config(
            create_viewer_app(store, smtp_hint=smtp_port),
            host=host,
            port=http_port,
            log_level="info",
            lifespan="off",
            access_log=False,
        )
    )

    def request_exit(signum: int, frame: object) -> None:
        # Before uvicorn runs (and when it re-raises the signal after its graceful shutdown) this is the
        # handler: just ask the server to stop instead of raising KeyboardInterrupt / dying on SIGTERM.
        server.should_exit = True

    # aiosmtpd logs every SMTP command at INFO; our own "stored ..." line is enough here.
    if logging.getLogger("mail.log").level == logging.NOTSET:
        logging.getLogger("mail.log").setLevel(logging.WARNING)

    handled = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, request_exit) for sig in handled}
    try:
        mailbox = DevMailbox(store.directory, smtp_port=smtp_port, host=host)
        with mailbox:
            print(
                f"invoiceflow mailbox: SMTP {host}:{mailbox.smtp_port}, "
                f"viewer http://{url_host(host)}:{http_port} (messages in {store.directory}); "
                "Ctrl-C to stop",
                flush=True,
            )
            if not server.should_exit:
                server.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
