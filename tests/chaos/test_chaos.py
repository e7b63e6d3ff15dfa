"""Chaos, short version: SIGKILL real worker and API processes in the middle of each side effect and
assert the exact counts (``bench.chaos`` has the harness; ``python -m bench --sections chaos`` runs it
with 20+ kills). Each takes about a minute."""

from __future__ import annotations

import pytest

from bench.chaos import books_chaos, email_chaos, inbox_chaos

pytestmark = pytest.mark.slow


async def test_email_under_worker_kills_with_a_slow_relay(temporal_env, make_settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    figures = await email_chaos(
        temporal_env.client, make_settings(temporal_env.client), tmp_path, per_kill=3, kills=4
    )
    print(figures)  # the figures of this run, with -s
    assert figures["kills"] == 4 and figures["emails"] == 6, figures
    assert figures["missing"] == 0, figures
    assert figures["copies_max"] <= 2, figures


async def test_books_under_worker_kills_while_the_stand_in_holds_its_reply(
    temporal_env, make_settings, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    figures = await books_chaos(
        temporal_env.client, make_settings(temporal_env.client), tmp_path, invoices=4, kills=4
    )
    print(figures)  # the figures of this run, with -s
    assert figures["kills"] >= 3, figures
    assert figures["invoices_in_books"] == figures["invoices"] == 4, figures
    assert figures["payments_in_books"] == 4 and figures["payment_copies_max"] == 1, figures
    assert figures["invoice_copies_max"] == 1 and figures["missing"] == 0, figures


async def test_webhook_inbox_under_api_kills(temporal_env, make_settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    figures = await inbox_chaos(
        temporal_env.client, make_settings(temporal_env.client), tmp_path, events=40, kills=3
    )
    print(figures)  # the figures of this run, with -s
    assert figures["kills"] == 3, figures
    assert figures["inbox_rows"] == figures["events"], figures
    assert figures["invoices"] == figures["events"] and figures["lost"] == 0 and figures["duplicated"] == 0, (
        figures
    )
