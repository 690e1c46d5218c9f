"""The helpers that stop what tests start leave nothing running."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from tests.integration.stopping import alive, children_of, stop_group

pytestmark = pytest.mark.integration


def test_stop_group_kills_members_that_outlive_their_leader() -> None:
    """A supervisor's workers stay in its group; when the supervisor dies first, stopping the
    group must still stop them (before, a leader that had exited returned at once)."""
    leader = subprocess.Popen(
        ["sh", "-c", "sleep 60 & echo started; wait"],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert leader.stdout is not None and leader.stdout.readline() == b"started\n"
        (member,) = children_of(leader.pid)
        os.kill(leader.pid, signal.SIGKILL)  # the leader only: its member lives on
        leader.wait(5)
        assert alive(member)
        stop_group(leader)
        deadline = time.monotonic() + 5
        while alive(member) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(member)
    finally:
        stop_group(leader, signal.SIGKILL)
        if leader.stdout is not None:
            leader.stdout.close()


def test_alive_knows_a_process_by_its_start_time_not_only_its_pid() -> None:
    process = subprocess.Popen(["sleep", "30"])
    try:
        (child,) = [c for c in children_of(os.getpid()) if c.pid == process.pid]
        assert alive(child)
        assert not alive(child._replace(started=child.started + 1))  # its pid, another process
    finally:
        process.kill()
        process.wait()
    assert not alive(child)
