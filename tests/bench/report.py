"""Writes benchmark figures into BENCHMARKS.md: one section per benchmark, with machine and date."""

from __future__ import annotations

import json
import os
import platform
import re
import statistics
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from monitor.build import engine_form

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = ROOT / "BENCHMARKS.md"
HEADER = "# cxmon benchmarks\n\nWritten by `make bench`; each section is replaced when its benchmark runs.\n"


def machine() -> str:
    """A one-line description of where the figures were taken, and with which engine build."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {engine_form()} engine"
    )


def median_of(runs: int, measure: Callable[[], float]) -> tuple[float, list[float]]:
    """Run `measure` several times; the median and every figure."""
    figures = [measure() for _ in range(runs)]
    return statistics.median(figures), figures


def write_section(name: str, body: str, command: str) -> None:
    """Replace (or add) the section `name` in BENCHMARKS.md."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = f"## {name}\n\n_{stamp} on {machine()}; `{command}`_\n\n{body.strip()}\n"
    text = BENCHMARKS.read_text() if BENCHMARKS.exists() else HEADER
    pattern = re.compile(rf"^## {re.escape(name)}\n.*?(?=^## |\Z)", re.MULTILINE | re.DOTALL)
    text = (
        pattern.sub(section + "\n", text)
        if pattern.search(text)
        else text.rstrip() + "\n\n" + section
    )
    BENCHMARKS.write_text(text)


def rate(count: int, run: Callable[[], object]) -> float:
    """Items per second for one call of `run` over `count` items."""
    started = time.perf_counter()
    run()
    return count / (time.perf_counter() - started)


def run_peer(command: list[str], result: Path, timeout_s: float = 600) -> dict[str, float]:
    """Run a peer process to completion (in its own process group); its figures."""
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        output, _ = process.communicate(timeout=timeout_s)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, 9)
            process.wait()
    if process.returncode or not result.exists():
        raise PeerFailed(output.decode(errors="replace"))
    figures: dict[str, float] = json.loads(result.read_text())
    return figures


class PeerFailed(AssertionError):
    """A peer process exited without figures; the message is its output."""
