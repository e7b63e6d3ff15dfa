"""A small, real development mailbox (in the spirit of Mailpit), in Python.

* :class:`MailStore` keeps every accepted message as one ``.eml`` file in a directory.
* :class:`MailboxHandler` is the aiosmtpd handler that stores messages, with an optional
  ``before_accept`` hook that lets tests hold a message between the end of DATA and the ``250`` reply.
* :class:`DevMailbox` runs the SMTP server (aiosmtpd ``Controller`` in its own thread) and, optionally,
  the HTTP viewer; it is what the test suite and ``invoiceflow dev`` use.
* :func:`create_viewer_app` is the FastAPI viewer (HTML pages and a small JSON API).
* :func:`run_mailbox` runs SMTP and the viewer in the foreground until SIGINT/SIGTERM
  (``invoiceflow mailbox``).
"""

from invoiceflow.mailbox.run import run_mailbox
from invoiceflow.mailbox.smtp import AcceptGate, DevMailbox, MailboxHandler
from invoiceflow.mailbox.store import Attachment, MailStore, MessageNotFound, StoredMessage
from invoiceflow.mailbox.viewer import create_viewer_app

__all__ = [
    "AcceptGate",
    "Attachment",
    "DevMailbox",
    "MailStore",
    "MailboxHandler",
    "MessageNotFound",
    "StoredMessage",
    "create_viewer_app",
    "run_mailbox",
]
