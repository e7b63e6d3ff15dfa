"""`invoiceflow dev` supervises its children: one that dies is restarted with backoff and the console
says so; only a child failing again and again (or Ctrl-C) stops the stack. And every dev data dir has
its own random webhook secrets, which `invoiceflow demo` reads. Real processes, no stand-ins."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

from core.settings import Settings
from invoiceflow.demo import config_from_env, dev_environment
from invoiceflow.dev_secrets import read_secrets, secrets_file
from invoiceflow.devstack import DevPorts, DevStack
from invoiceflow.supervise import RestartPolicy

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]


def stack(tmp_path: Path, said: list[str], policy: RestartPolicy) -> DevStack:
    return DevStack(data_dir=tmp_path, ports=DevPorts(), settings=Settings(), say=said.append, policy=policy)


def test_a_killed_child_is_restarted_and_the_stack_keeps_running(tmp_path: Path) -> None:
    said: list[str] = []
    dev = stack(tmp_path, said, RestartPolicy(initial_s=0.2))
    (tmp_path / "logs").mkdir()
    dev._spawn("worker", SLEEPER, raw=True)
    dev._spawn("api", SLEEPER, raw=True)
    first, api = dev.child("worker").process.pid, dev.child("api").process.pid
    restarted = threading.Event()

    def chaos() -> None:
        time.sleep(0.5)
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and dev.child("worker").process.pid == first:
            time.sleep(0.05)
        restarted.set()
        time.sleep(0.5)  # the new worker stays up
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C

    thread = threading.Thread(target=chaos)
    previous = signal.getsignal(signal.SIGINT)
    thread.start()
    try:
        code = dev.wait(poll_s=0.05)
    finally:
        signal.signal(signal.SIGINT, previous)
        thread.join()
        dev.stop()
    assert code == 0 and restarted.is_set()
    assert dev.children == []
    assert said[0].startswith("worker exited with code -9; restarting it in 0 s"), said
    assert said[1] == "worker restarted (restart 1)", said
    assert len(said) == 2  # the API was left alone
    assert not _alive(api) and not _alive(first)


def test_a_child_that_keeps_failing_stops_the_stack_with_the_reason(tmp_path: Path) -> None:
    said: list[str] = []
    dev = stack(tmp_path, said, RestartPolicy(initial_s=0.05, max_s=0.2, max_failures=3, window_s=30))
    (tmp_path / "logs").mkdir()
    dev._spawn("api", [sys.executable, "-c", "raise SystemExit(3)"], raw=True)
    dev._spawn("worker", SLEEPER, raw=True)
    previous = signal.getsignal(signal.SIGINT)
    began = time.monotonic()
    try:
        code = dev.wait(poll_s=0.02)
    finally:
        signal.signal(signal.SIGINT, previous)
        dev.stop()
    assert code == 1 and time.monotonic() - began < 10
    assert [m.split(";")[0] for m in said if "restarting" in m] == ["api exited with code 3"] * 2
    assert said[-1].startswith("api exited 3 times within 30 s (last code 3); see "), said
    assert said[-1].endswith("api.log. Stopping."), said


def test_backoff_doubles_and_resets_after_a_stable_run() -> None:
    from invoiceflow.supervise import ChildState, on_exit

    policy = RestartPolicy(initial_s=1, max_s=8, stable_s=60, max_failures=100, window_s=1000)
    state = ChildState("worker", started_at=0.0)
    delays = []
    for now in (1.0, 3.0, 7.0, 12.0, 20.0, 30.0):
        delays.append(on_exit(state, -9, now, policy))
        state.started_at = now + delays[-1]
    assert delays == [1, 2, 4, 8, 8, 8]
    state.started_at = 100.0
    assert on_exit(state, -9, 200.0, policy) == 1  # ran 100 s: a fresh start


def test_each_data_dir_gets_random_secrets_that_the_demo_reads(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    for name in list(os.environ):
        if name.endswith("_WEBHOOK_SECRET"):
            monkeypatch.delenv(name)
    one, two = tmp_path / "one", tmp_path / "two"
    env_one = dev_environment({}, data_dir=one)
    env_two = dev_environment({"INVOICEFLOW_GITHUB_WEBHOOK_SECRET": "mine"}, data_dir=two)
    stripe = env_one["INVOICEFLOW_STRIPE_WEBHOOK_SECRET"]
    assert stripe.startswith("whsec_") and len(stripe) > 40
    assert stripe != env_two["INVOICEFLOW_STRIPE_WEBHOOK_SECRET"]
    assert env_one["INVOICEFLOW_GITHUB_WEBHOOK_SECRET"] != env_one["INVOICEFLOW_JIRA_WEBHOOK_SECRET"]
    assert env_two["INVOICEFLOW_GITHUB_WEBHOOK_SECRET"] == "mine"  # the user's setting wins
    assert "dev-webhook-secret" not in env_one.values()
    assert secrets_file(one).stat().st_mode & 0o777 == 0o600
    assert dev_environment({}, data_dir=one) == env_one  # a second start reuses them
    config = config_from_env("http://127.0.0.1:1", "t", None, one)
    assert config.secret_for("stripe") == stripe == read_secrets(one)["stripe"]
    assert config.secret_for("hubspot") == env_one["INVOICEFLOW_HUBSPOT_WEBHOOK_SECRET"]
    assert config_from_env("http://127.0.0.1:1", "t", "given", one).secret_for("jira") == "given"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return waited == 0


def test_a_closed_terminal_never_stops_the_stack_from_stopping(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """`invoiceflow dev` writes "stopping ..." before it stops its children: with its stderr gone (the
    terminal closed, a test that stopped reading) that write raised and the children were left running."""
    import io

    from invoiceflow.cli import _say

    class Gone(io.TextIOBase):
        def write(self, _: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sys, "stderr", Gone())
    _say("stopping ...")  # must not raise


def test_a_child_that_dies_while_starting_is_reported_with_the_end_of_its_log(tmp_path: Path) -> None:
    dev = stack(tmp_path, [], RestartPolicy(initial_s=0.2))
    (tmp_path / "logs").mkdir()
    failing = "print('booting'); print('[Errno 98] address already in use'); raise SystemExit(3)"
    dev._spawn("mailbox", [sys.executable, "-c", failing], raw=True)
    dev.child("mailbox").process.wait(timeout=30)
    error = dev._first_dead().died()  # type: ignore[union-attr]
    assert str(error).startswith("mailbox exited with code 3; see ")
    assert "| [Errno 98] address already in use" in str(error) and "| booting" in str(error)
