from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from invoiceflow.mailbox import DevMailbox


@pytest.fixture
def mailbox(tmp_path: Path) -> Iterator[DevMailbox]:
    with DevMailbox(tmp_path / "mail") as mb:
        yield mb
