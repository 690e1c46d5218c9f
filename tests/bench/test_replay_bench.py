"""`cxmon replay` throughput on simulated traffic, and whether its time is linear in the events.

Two recordings of the simulator (20,000 customers over 14 days, every rule-relevant type): the
first 50,000 and 200,000 events of journeys spread over the same 14 days. Each is replayed
through the shipped pack RUNS times, alternating, in this process (one core); CPU seconds of
`replay()` only (reading the file and compiling the rules are outside). Linear time means
200k takes 4x the time of 50k.
"""

from __future__ import annotations

import gc
import os
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.authoring.replay import replay
from monitor.engine import Ruleset
from monitor.events.codec import encode
from monitor.rules import load_rules
from monitor.simulator import Simulator
from tests.bench.report import write_section

RULES = Path(__file__).resolve().parents[2] / "rules"
RUNS = int(os.environ.get("CXMON_BENCH_RUNS", "3"))
SIZES = {50_000: 18_500, 200_000: 74_000}  # events -> journeys that give them over 14 days


def recording(events: int, journeys: int) -> list[bytes]:
    end = datetime(2026, 6, 1, tzinfo=UTC)
    made = Simulator(seed=5, customers=20_000).backfill(end - timedelta(days=14), end, journeys)
    assert len(made) >= events, len(made)
    return [encode(e) for e in made[:events]]


def cpu_seconds(lines: list[bytes]) -> tuple[float, int]:
    rules = load_rules([RULES]).rules
    gc.collect()
    started = time.process_time()
    result = replay(lines, Ruleset(rules), timedelta(minutes=5))
    return time.process_time() - started, len(result.alerts)


@pytest.mark.timeout(3600)
def test_replay_is_fast_and_linear() -> None:
    files = {size: recording(size, journeys) for size, journeys in SIZES.items()}
    gc.freeze()  # the recordings live for the whole bench; a replay's own state is collected
    times: dict[int, list[float]] = {size: [] for size in files}
    alerts: dict[int, int] = {}
    for _ in range(RUNS):
        for size, lines in files.items():
            seconds, alerts[size] = cpu_seconds(lines)
            times[size].append(seconds)
    gc.unfreeze()
    small, large = statistics.median(times[50_000]), statistics.median(times[200_000])
    per_run = [b / a for a, b in zip(times[50_000], times[200_000], strict=True)]
    rows = "\n".join(
        f"| {size:,} | {', '.join(f'{t:.2f}' for t in times[size])} | "
        f"{size / statistics.median(times[size]):,.0f} | {alerts[size]:,} |"
        for size in files
    )
    write_section(
        "Replay: throughput and linearity",
        f"""
`cxmon replay` of simulated traffic (20,000 customers, 14 days, every rule-relevant type),
shipped pack, one core, CPU seconds of `replay()`; {RUNS} runs alternating the two sizes.
Goal: at least 100,000 events/s, and 200k taking 4x the time of 50k (linear).

| events | CPU s per run | events/s (median) | alerts |
|---|---|---|---|
{rows}

200k / 50k time: **{large / small:.2f}x** (per run: {", ".join(f"{r:.2f}" for r in per_run)}; 4.00x is
linear).
""",
        "make bench (tests/bench/test_replay_bench.py)",
    )
    assert 3.0 < large / small < 5.5, (small, large)  # linear within noise, not quadratic
