"""An SMTP relay that takes its time to answer the final dot, as relays that scan mail do.

It keeps the message the moment the dot arrives, then answers ``250`` only ``delay_s`` later: a client
that dies in between (a SIGKILLed worker) never hears that its message was accepted, which is the
window in which SMTP cannot be exactly-once (RFC 1047). Built on the dev mailbox's aiosmtpd server.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

from invoiceflow.mailbox import DevMailbox, MailboxHandler
from invoiceflow.mailbox.store import ACCEPTED_REPLY


class _SlowHandler(MailboxHandler):
    def __init__(self, relay: SlowRelay) -> None:
        super().__init__(relay.store)
        self.relay = relay

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content = envelope.original_content or envelope.content or b""
        self.store.save(content, envelope.mail_from or "", list(envelope.rcpt_tos))
        self.relay.received()
        # Shielded: the client going away does not undo the acceptance (it only misses the reply).
        await asyncio.shield(asyncio.sleep(self.relay.delay_s))
        return ACCEPTED_REPLY


class SlowRelay(DevMailbox):
    def __init__(self, store_dir: Path | str, *, delay_s: float = 1.5) -> None:
        super().__init__(store_dir)
        self.delay_s = delay_s
        self._count = 0
        self._changed = threading.Condition()
        self.handler = _SlowHandler(self)

    def received(self) -> None:
        with self._changed:
            self._count += 1
            self._changed.notify_all()

    @property
    def count(self) -> int:
        with self._changed:
            return self._count

    def wait_for_count(self, count: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._count < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"the relay got {self._count} of {count} messages in {timeout} s")
                self._changed.wait(left)
