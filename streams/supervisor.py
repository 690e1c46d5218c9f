"""`cxmon run --processes N`: N worker processes in one consumer group, under one supervisor.

Each worker is a `cxmon run --processes 1` child with its own metrics port (`CXMON_METRICS_PORT`
plus its index), data directory (`<CXMON_DATA_DIR>/process-<i>`: RocksDB allows one owner per
directory) and ready file (`<CXMON_READY_FILE>.<i>`); the supervisor writes `CXMON_READY_FILE`
itself once every child is ready. SIGTERM, SIGINT and SIGHUP are forwarded to every child. When a
child exits on its own the supervisor stops the others and exits with that child's code, so
whatever restarts the supervisor (systemd, Docker, Kubernetes) restarts the whole group.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

from monitor.settings import Settings

log = logging.getLogger("cxmon")
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
STOP_GRACE_S = 30.0  # how long children get to finish after a stop before they are killed


def available_cores() -> int:
    """Cores this process may use: its CPU affinity, and the cgroup's CPU quota if it has one."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = cores or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass  # no cgroup v2 limit readable: the affinity stands
    return cores


def process_count(requested: int, partitions: int) -> int:
    """How many workers to run: `requested`, or one per core when 0; never more than the
    partitions, since a worker without a partition only waits."""
    wanted = requested if requested > 0 else available_cores()
    return max(1, min(wanted, partitions))


def child_env(settings: Settings, index: int) -> dict[str, str]:
    """The environment of worker `index`: the supervisor's, with its own port, dir and file."""
    env = dict(os.environ)
    env["CXMON_PROCESSES"] = "1"
    env["CXMON_RULES_PATH"] = str(settings.rules_path)
    env["CXMON_METRICS_PORT"] = str(settings.metrics_port + index if settings.metrics_port else 0)
    data_dir = settings.data_dir / f"process-{index}"
    data_dir.mkdir(parents=True, exist_ok=True)  # Faust makes only the last level
    env["CXMON_DATA_DIR"] = str(data_dir)
    if settings.ready_file is not None:
        env["CXMON_READY_FILE"] = f"{settings.ready_file}.{index}"
    return env


def supervise(settings: Settings, count: int) -> int:
    """Run `count` workers until they stop; the exit code of the first to stop on its own, or 0."""
    command = [sys.executable, "-m", "cli.main", "run"]
    children = [
        subprocess.Popen(command, env=child_env(settings, i))  # noqa: S603  # our own command
        for i in range(count)
    ]
    log.info("cxmon supervisor: %d workers, pids %s", count, [c.pid for c in children])
    stopping = False

    def forward(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = stopping or signum != signal.SIGHUP
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    for signum in FORWARDED:
        signal.signal(signum, forward)
    ready_written = False
    code = 0
    while any(c.poll() is None for c in children):
        exited = [c for c in children if c.returncode is not None]
        if exited and not stopping:
            code = exited[0].returncode or 1
            log.error("worker pid %d exited with %d: stopping the others", exited[0].pid, code)
            forward(signal.SIGTERM, None)
        if not ready_written and settings.ready_file is not None:
            ready_written = _all_ready(settings.ready_file, count)
        time.sleep(0.2)
    _reap(children)
    codes = [c.returncode for c in children]
    return code or next((c for c in codes if c not in (0, -signal.SIGTERM, -signal.SIGINT)), 0)


def _all_ready(ready_file: Path, count: int) -> bool:
    if not all(Path(f"{ready_file}.{i}").exists() for i in range(count)):
        return False
    ready_file.write_text(f"{count} workers ready\n", encoding="utf-8")
    return True


def _reap(children: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + STOP_GRACE_S
    for child in children:
        try:
            child.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
