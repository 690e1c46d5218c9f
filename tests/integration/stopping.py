"""Stopping what integration tests start, even when a test fails or the run is interrupted.

Every process a test starts (broker, worker, notifier, Prometheus, Alertmanager, the demo) runs
in a session of its own (`start_new_session=True`), so a terminal's Ctrl-C does not reach it
and only its own stop does: `stop_group` in a `finally` or a fixture's teardown. The demo starts
its broker, worker, notifier and simulator in sessions of their own too, so killing the demo's
group leaves them running: `stop_demo` stops them as well.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path
from typing import NamedTuple


class Child(NamedTuple):
    """A process by its pid and start time, so a pid the system reused is not taken for it."""

    pid: int
    started: int


def stop_group(
    process: subprocess.Popen[bytes], sig: signal.Signals = signal.SIGTERM, timeout_s: float = 15.0
) -> None:
    """Stop the process group `process` leads: `sig`, then SIGKILL if it has not exited within
    `timeout_s`; members left after their leader exited (a supervisor's workers) are killed."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    # A living member keeps the group's id from being given to another process, so this
    # signals only what the test started.
    if _group_has_members(process.pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


def children_of(pid: int) -> list[Child]:
    """The direct children of a process (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None and int(fields[1]) == pid:
                found.append(Child(int(entry.name), int(fields[19])))
    return found


def alive(child: Child) -> bool:
    """Whether the process still runs (not a zombie), and is the same one."""
    fields = _stat(child.pid)
    return fields is not None and fields[0] != "Z" and int(fields[19]) == child.started


def stop_demo(demo: subprocess.Popen[bytes], started: list[Child] | None = None) -> None:
    """Stop a `cxmon demo` and everything it started: SIGTERM lets it stop its children; any
    it did not stop (it was killed, or `started` lists more) are killed by their group."""
    children = set(started or [])
    if demo.poll() is None:
        children.update(children_of(demo.pid))
        with contextlib.suppress(ProcessLookupError):
            os.killpg(demo.pid, signal.SIGTERM)
        try:
            demo.wait(30)
        except subprocess.TimeoutExpired:
            children.update(children_of(demo.pid))  # any started since
            stop_group(demo, signal.SIGKILL)
    for child in children:
        if alive(child):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name: state, ppid, pgrp, ... ."""
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _group_has_members(pgid: int) -> bool:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None and int(fields[2]) == pgid:
                return True
    return False
