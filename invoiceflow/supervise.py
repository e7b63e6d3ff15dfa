"""Restart policy of `invoiceflow dev`: a child that dies is started again, with backoff, and said so.

One crashed worker or API (an out-of-memory kill, a bug, ``kill -9`` while trying things out) should not
take PostgreSQL, Temporal and the rest down with it. Each child that exits is restarted after a delay
that doubles with every failure in a row (1 s, 2 s, 4 s, ... up to 30 s); a child that then stays up
for ``stable_s`` starts again from 1 s. A child that fails ``max_failures`` times within ``window_s``
is beyond a restart (a port taken, a broken configuration): the stack stops and says why.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class RestartPolicy:
    initial_s: float = 1.0
    max_s: float = 30.0
    stable_s: float = 60.0
    max_failures: int = 5
    window_s: float = 120.0


@dataclass
class ChildState:
    """What the supervisor remembers of one child between its lives."""

    name: str
    started_at: float
    failures: deque[float] = field(default_factory=deque)
    streak: int = 0  # failures in a row without a stable run in between
    restart_at: float | None = None  # set while waiting to restart
    restarts: int = 0


class GiveUp(Exception):
    """A child failed too often: stop the stack."""


def on_exit(state: ChildState, code: int | None, now: float, policy: RestartPolicy) -> float:
    """Record that the child exited at ``now``; the delay before its restart. Raises ``GiveUp``."""
    if now - state.started_at >= policy.stable_s:
        state.streak = 0
    state.streak += 1
    state.failures.append(now)
    while state.failures and state.failures[0] < now - policy.window_s:
        state.failures.popleft()
    if len(state.failures) >= policy.max_failures:
        raise GiveUp(
            f"{state.name} exited {len(state.failures)} times within {policy.window_s:.0f} s "
            f"(last code {code})"
        )
    delay = min(policy.max_s, policy.initial_s * 2 ** (state.streak - 1))
    state.restart_at = now + delay
    return delay


def tick(
    states: dict[str, ChildState],
    exit_code: Callable[[str], int | None],
    restart: Callable[[str], None],
    now: float,
    policy: RestartPolicy,
    say: Callable[[str], None],
    log_of: Callable[[str], str] = lambda name: "",
) -> None:
    """One look at every child: schedule the restart of those that exited, restart those whose delay is
    over. ``exit_code(name)`` is None while the child runs. Raises ``GiveUp``."""
    for name, state in states.items():
        if state.restart_at is None:
            code = exit_code(name)
            if code is None:
                continue
            try:
                delay = on_exit(state, code, now, policy)
            except GiveUp as exc:
                raise GiveUp(f"{exc}; see {log_of(name)}") from None
            say(f"{name} exited with code {code}; restarting it in {delay:.0f} s (see {log_of(name)})")
        elif now >= state.restart_at:
            restart(name)
            state.restart_at, state.started_at = None, now
            state.restarts += 1
            say(f"{name} restarted (restart {state.restarts})")
