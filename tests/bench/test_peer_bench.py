"""The peer comparison: cxmon's worker (shipped pack with one and two processes, and the peer's
three rules alone) beside the same three rules hand-written as a quixstreams application and as
a plain aiokafka consumer, on the same topic and broker, in the same run.

quixstreams runs in its own virtualenv (.cxmon/bench-peer, created on first use): it pins
pydantic and confluent-kafka versions that differ from cxmon's. Sizes: CXMON_BENCH_EVENTS
(default 50,000), CXMON_BENCH_RUNS (default 3). Takes about 6 minutes on a quiet 2-core machine
(3 runs of five consumers over 50k events, plus the peer virtualenv's install on first use).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterable
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from streams.broker import EmbeddedBroker
from tests.bench.report import PeerFailed, run_peer, write_section
from tests.bench.test_worker_bench import RULES, WorkerRun, publish_traffic, worker_rate
from tests.integration.harness import ROOT, Deployment

QUIX = "quixstreams==3.28.1"
PEER_RULES = ("billing-charges-waived-fee", "sales-onboarding-handoff-stalled", "contact-fatigue")
VENV = ROOT / ".cxmon" / "bench-peer"
RUNS = int(os.environ.get("CXMON_BENCH_RUNS", "3"))


def peer_python() -> Path:
    """The peer virtualenv's interpreter, with quixstreams installed at the pinned version."""
    python = VENV / "bin" / "python"
    check = [
        str(python),
        "-c",
        f"import importlib.metadata as m; assert m.version('quixstreams') == '{QUIX.split('==')[1]}'",
    ]
    if not python.exists() or subprocess.run(check, capture_output=True).returncode:
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", QUIX], check=True)
    return python


def peer_rules(folder: Path) -> Path:
    """The shipped rule files with only the peer's three rules (as `experimental`: no rule
    tests come along to cover them)."""
    yaml = YAML()
    folder.mkdir()
    for source in sorted(RULES.glob("*.yaml")):
        if source.name.endswith(".test.yaml"):
            continue
        spec = yaml.load(source.read_text())
        kept = [r for r in spec.get("rules", []) if r["id"] in PEER_RULES]
        if kept:
            spec["rules"] = kept
            spec.setdefault("defaults", {})["status"] = "experimental"
            for rule in kept:
                rule.pop("status", None)
            with (folder / source.name).open("w") as out:
                yaml.dump(spec, out)
    return folder


def _worker(bootstrap: str, workdir: Path, topic: str, **extra: str) -> WorkerRun:
    """One fresh worker on the topic."""
    deployment = Deployment(bootstrap, workdir)
    deployment.workdir.mkdir()
    return worker_rate(deployment, topic, **extra)


@pytest.mark.timeout(3600)
def test_cxmon_beside_hand_written_peers() -> None:
    python = peer_python()
    script = str(ROOT / "tests" / "bench" / "peer_quix.py")
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker() as broker:
        topic = f"bench.events.{uuid.uuid4().hex[:6]}"
        count = publish_traffic(broker.bootstrap, topic)
        args = [broker.bootstrap, topic, str(count)]
        three = peer_rules(Path(tmp) / "peer-rules")
        # As shipped, quixstreams cannot set up state (or group_by) on this broker; show why.
        try:
            run_peer([str(python), script, *args, f"{tmp}/plain.json"], Path(f"{tmp}/plain.json"))
            unmodified = "ran unmodified"
        except PeerFailed as failed:
            tail = [line for line in str(failed).splitlines() if line.strip()][-4:]
            unmodified = "\n".join(tail).replace(str(ROOT) + "/", "")
        cxmon: list[WorkerRun] = []
        pairs: list[WorkerRun] = []
        trio: list[WorkerRun] = []
        quix: list[float] = []
        plain: list[float] = []
        alerts: dict[str, float] = {}
        for run in range(RUNS):
            cxmon.append(_worker(broker.bootstrap, Path(tmp) / f"run{run}", topic))
            # Two processes without standby replicas: with Faust's default one, each process
            # also replays the other's changelog (README: the trade-off).
            pairs.append(
                _worker(
                    broker.bootstrap,
                    Path(tmp) / f"run{run}p",
                    topic,
                    CXMON_PROCESSES="2",
                    CXMON_STANDBY_REPLICAS="0",
                )
            )
            trio.append(
                _worker(
                    broker.bootstrap, Path(tmp) / f"run{run}t", topic, CXMON_RULES_PATH=str(three)
                )
            )
            out = Path(tmp) / f"quix{run}.json"
            figures = run_peer([str(python), script, *args, str(out), "--shim", "--group-by"], out)
            quix.append(figures["rate"])
            alerts["quixstreams"] = figures["alerts"]
            out = Path(tmp) / f"aiokafka{run}.json"
            figures = run_peer(
                [sys.executable, "-m", "tests.bench.peer_aiokafka", *args, str(out)], out
            )
            plain.append(figures["rate"])
            alerts["aiokafka"] = figures["alerts"]
    median = statistics.median
    q, a = median(quix), median(plain)

    def runs(figures: Iterable[float]) -> str:
        return ", ".join(f"{x:,.0f}" for x in figures)

    def row(name: str, timed: list[WorkerRun], goal: str, cpu_goal: str = "") -> str:
        rates, whole = [w.rate for w in timed], [w.end_to_end for w in timed]
        cpu = [w.cpu_us for w in timed]
        return (
            f"| {name} | {median(rates):,.0f} | {runs(rates)} | **{median(rates) / q:.2f}x** "
            f"| {goal} | {median(cpu):,.0f} ({runs(cpu)}{cpu_goal}) "
            f"| {median(whole):,.0f} ({median(whole) / q:.2f}x) |"
        )

    ours, two = median(w.rate for w in cxmon), median(w.rate for w in pairs)
    write_section(
        "Peer: cxmon vs the same rules hand-written",
        f"""
{count:,} simulated CloudEvents on one 8-partition topic of the embedded broker. Three rules
hand-written (contradiction `billing-charges-waived-fee`, stalled
`sales-onboarding-handoff-stalled` checked on the key's next event, burst `contact-fatigue`):
`tests/bench/peer_quix.py`. Each run measures, one after the other on the same topic: the cxmon
worker with the whole shipped pack, the same with `--processes 2`
(`CXMON_STANDBY_REPLICAS=0`), the worker with only the peer's three rules, the quixstreams app
({QUIX}, re-keys by subject with `group_by`, RocksDB state with changelog), and an aiokafka
consumer group with the same rule code and state in a dict (no re-keying, no durable state).
Each is timed from its first processed event to its last (cxmon: `worker_rate`, from the first
events ingested to the last, read from its metrics every 20 ms, counting the events in
between; CPU time from /proc over the same span). The last column times cxmon end to end, from
ready until every event is ingested and every re-keyed record committed: the group's first
fetch, up to one commit interval and the sweep after the backlog, which the peers' timings
leave out. Median of {RUNS} runs.

As shipped, quixstreams does not start on this broker; its last lines were:

```
{unmodified}
```

The embedded broker's DescribeConfigs answer lacks `retention.ms`, which quixstreams needs to
derive changelog and repartition topics, so the quixstreams peer runs with a shim (`--shim`)
that reports Kafka's default when it is missing; nothing else is changed.

| | events/s (median) | runs | vs quixstreams | goal | CPU µs/event (median; runs) | end to end, events/s (vs quixstreams) |
|---|---|---|---|---|---|---|
{row("cxmon worker (shipped pack, 10 rules)", cxmon, "≥ 1.0x", "; goal ≤ 60")}
{row("cxmon worker, `--processes 2`", pairs, "≥ 1.7x")}
{row("cxmon worker, the peer's 3 rules", trio, "≥ 1.5x")}
| quixstreams app (3 rules) | {q:,.0f} | {runs(quix)} | 1.0x | | | |
| aiokafka consumer (3 rules, no durable state) | {a:,.0f} | {runs(plain)} | {a / q:.2f}x | | | |

Alerts in the last run: quixstreams {alerts["quixstreams"]:,.0f}, aiokafka
{alerts["aiokafka"]:,.0f}. Two processes / one: {two / ours:.2f}x; cxmon / aiokafka
hand-written: {ours / a:.2f}x. The machine is a shared virtual one, so single figures are noisy;
ratios come from one run.
""",
        "make bench",
    )
    assert ours > 0 and two > 0 and median(w.rate for w in trio) > 0 and q > 0 and a > 0
