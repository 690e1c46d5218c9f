"""Backtest: `replay` over recorded events, its rejects, its baseline diff, and `cxmon replay`."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli.main import app
from monitor.authoring import replay as replay_module
from monitor.authoring.replay import ReplayResult, diff_alerts, replay
from monitor.engine.driver import Driver
from monitor.engine.ruleset import Ruleset
from monitor.engine.state import Finding
from monitor.engine.stored import split_slot
from monitor.events import Event, RejectReason
from monitor.events.codec import encode
from monitor.rules import load_rules
from monitor.simulator import Simulator

RULES = Path(__file__).resolve().parents[2] / "rules"
SHIPPED = (
    "billing.yaml",
    "handoffs.yaml",
)  # the rules these tests are about; others may join rules/
T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
LATENESS = timedelta(minutes=10)
TICK = timedelta(minutes=10)
WAIVED = "billing-charges-waived-fee"
STALLED = "sales-onboarding-handoff-stalled"
runner = CliRunner()


def event(source: str, type_: str, subject: str, at: timedelta, **data: Any) -> Event:
    ident = f"{source}-{type_}-{subject}-{int(at.total_seconds())}"
    return Event(id=ident, source=source, type=type_, time=T0 + at, subject=subject, data=data)


def waiver(subject: str, at: timedelta, fee: str = "late_fee") -> Event:
    return event("support", "fee.waiver_promised", subject, at, fee_code=fee)


def charge(subject: str, at: timedelta, fee: str = "late_fee", amount: int = 25) -> Event:
    return event("billing", "invoice.charged", subject, at, fee_code=fee, amount=amount)


def closed(subject: str, at: timedelta) -> Event:
    return event("sales", "deal.closed", subject, at, deal_id=f"D-{subject}")


def kickoff(subject: str, at: timedelta) -> Event:
    return event("onboarding", "kickoff.held", subject, at, deal_id=f"D-{subject}")


def pack(target: Path, names: tuple[str, ...] = SHIPPED, edit: tuple[str, str] = ("", "")) -> Path:
    """A copy of shipped rule files in a fresh directory, with one text replacement."""
    target.mkdir()
    for name in names:
        (target / name).write_text((RULES / name).read_text().replace(*edit))
    return target


def run(lines: list[bytes], rules: Path | None = None) -> ReplayResult:
    loaded = load_rules([rules] if rules else [RULES / name for name in SHIPPED])
    assert not loaded.errors
    return replay(lines, Ruleset(loaded.rules, LATENESS), LATENESS)


def summary(result: ReplayResult) -> list[tuple[str, str, str]]:
    return [(a.rule_id, a.key, a.status) for a in result.alerts]


def journeys() -> list[Event]:
    """Every shipped conflict and non-conflict, for 40 customers, a few minutes apart."""
    events: list[Event] = []
    for n in range(40):
        at = timedelta(minutes=3 * n)
        case = n % 5
        if case == 0:  # charge after waiver: firing
            events += [waiver(f"c{n}", at), charge(f"c{n}", at + timedelta(minutes=4))]
        elif case == 1:  # another fee: nothing
            events += [waiver(f"c{n}", at), charge(f"c{n}", at + timedelta(minutes=2), "setup_fee")]
        elif case == 2:  # no kickoff: stalled fires
            events += [closed(f"c{n}", at)]
        elif case == 3:  # kickoff in time: nothing
            events += [closed(f"c{n}", at), kickoff(f"c{n}", at + timedelta(minutes=5))]
        else:  # late kickoff: firing, then resolved
            events += [closed(f"c{n}", at), kickoff(f"c{n}", at + timedelta(days=3, hours=2))]
    events.append(event("marketing", "newsletter.sent", "c0", timedelta(days=4)))  # ends the file
    return sorted(events, key=lambda e: e.time)


def test_replay_of_a_small_file_raises_the_expected_alerts() -> None:
    lines = [
        encode(waiver("c1", timedelta(0))),
        encode(closed("c2", timedelta(hours=1))),
        encode(charge("c1", timedelta(days=2))),
        encode(kickoff("c2", timedelta(days=4))),
    ]
    result = run(lines)
    assert summary(result) == [
        (WAIVED, "c1", "firing"),
        (STALLED, "c2", "firing"),
        (STALLED, "c2", "resolved"),
    ]
    assert result.per_rule == {WAIVED: 1, STALLED: 2}
    assert result.events == 4
    assert result.rejected == []
    stalled = result.alerts[1]
    assert stalled.event_time == T0 + timedelta(hours=1, days=3)  # the deadline, not the kickoff


def test_end_of_input_fires_deadlines_up_to_the_last_event_only() -> None:
    deal = encode(closed("c1", timedelta(0)))
    assert summary(run([deal, encode(waiver("c9", timedelta(days=3)))])) == [
        (STALLED, "c1", "firing")
    ]
    assert summary(run([deal, encode(waiver("c9", timedelta(days=2)))])) == []


def test_shuffled_within_lateness_gives_the_same_alerts_as_sorted() -> None:
    ordered = journeys()
    rng = random.Random(42)
    # Arrival = event time + a delay below the lateness: no record is too late, many swap places.
    delays = [timedelta(seconds=rng.uniform(0, LATENESS.total_seconds() - 1)) for _ in ordered]
    arrived = [
        e for _, e in sorted(zip(delays, ordered, strict=True), key=lambda p: p[1].time + p[0])
    ]
    assert arrived != ordered

    sorted_run = run([encode(e) for e in ordered])
    shuffled_run = run([encode(e) for e in arrived])

    assert shuffled_run.rejected == []
    assert set(summary(shuffled_run)) == set(summary(sorted_run))
    assert sorted(summary(shuffled_run)) == sorted(summary(sorted_run))
    # not only the same conflicts: the same alerts, fingerprints, times and messages
    assert [a.model_dump() for a in shuffled_run.alerts] == [
        a.model_dump() for a in sorted_run.alerts
    ]
    assert sorted_run.per_rule == {WAIVED: 8, STALLED: 24}


def test_bad_lines_are_rejected_with_reasons_and_do_not_stop_processing() -> None:
    lines = [
        encode(waiver("c1", timedelta(0))),
        b"not json\n",
        b"\n",
        b'{"specversion": "1.0", "id": "x", "source": "billing", "type": "t"}\n',
        encode(closed("c2", timedelta(days=1))),
        encode(charge("c9", timedelta(0))),  # a day behind the watermark
        b"[1, 2]\n",
        encode(charge("c1", timedelta(days=2))),
    ]
    result = run(lines)
    assert [(r.line_no, r.reason) for r in result.rejected] == [
        (2, RejectReason.BAD_JSON),
        (4, RejectReason.MISSING_FIELD),
        (6, RejectReason.TOO_LATE),
        (7, RejectReason.NOT_AN_OBJECT),
    ]
    assert "time, subject" in result.rejected[1].detail
    assert summary(result) == [(WAIVED, "c1", "firing")]
    assert result.events == 3


def test_baseline_diff_names_alerts_added_and_removed(tmp_path: Path) -> None:
    relaxed = pack(tmp_path / "relaxed", edit=("within: 3d", "within: 5d"))
    lines = [encode(e) for e in journeys()]

    current, candidate = run(lines), run(lines, relaxed)
    diff = diff_alerts(candidate.alerts, current.alerts)

    assert diff.added == []
    assert {(a.rule_id, a.status) for a in diff.removed} == {
        (STALLED, "firing"),
        (STALLED, "resolved"),
    }
    assert len(diff.removed) == 24
    assert diff.unchanged == 8  # the waiver conflicts are the same alerts, same fingerprints
    assert diff_alerts(current.alerts, candidate.alerts).added == diff.removed


def test_cli_replay_json_prints_one_alert_per_line_and_exits_0_despite_rejects(
    tmp_path: Path,
) -> None:
    events = tmp_path / "events.jsonl"
    events.write_bytes(
        encode(waiver("c1", timedelta(0)))
        + b"\n{broken\n"
        + encode(charge("c1", timedelta(days=1)))
    )
    result = runner.invoke(
        app, ["replay", str(events), "--rules", str(pack(tmp_path / "r")), "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    alerts = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(a["rule_id"], a["key"], a["status"]) for a in alerts] == [(WAIVED, "c1", "firing")]
    assert {"event_time", "message", "evidence", "fingerprint"} <= set(alerts[0])
    assert "line 2" in result.stderr and "bad_json" in result.stderr
    assert WAIVED in result.stderr  # the per-rule summary


def test_cli_replay_exits_1_when_rules_have_errors(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("version: 1\nrules:\n  - id: x\n    kind: nonsense\n")
    events = tmp_path / "events.jsonl"
    events.write_bytes(encode(waiver("c1", timedelta(0))))
    result = runner.invoke(app, ["replay", str(events), "--rules", str(tmp_path / "bad.yaml")])
    assert result.exit_code == 1
    assert "bad.yaml:" in result.stderr


def test_cli_replay_baseline_prints_added_and_removed(tmp_path: Path) -> None:
    baseline = pack(tmp_path / "old", names=("billing.yaml",))
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(encode(e) for e in journeys()))
    args = [
        "replay",
        str(events),
        "--rules",
        str(pack(tmp_path / "new")),
        "--baseline",
        str(baseline),
    ]

    as_json = runner.invoke(app, [*args, "--format", "json"])
    as_table = runner.invoke(app, args)

    assert as_json.exit_code == 0, as_json.output
    changes = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert {(c["change"], c["rule_id"]) for c in changes} == {("added", STALLED)}
    assert "+24 added, -0 removed, 8 unchanged" in as_json.stderr
    assert as_table.exit_code == 0
    assert all(line.startswith(("+", " ")) for line in as_table.stdout.splitlines())


class SweepEverything(Driver):
    """The reference: sweep every state at every watermark step, and before every event that
    touches it (what the driver's due index skips)."""

    def sweep(
        self, partition: int, now: datetime, forget_now: datetime | None = None
    ) -> list[Finding]:
        findings: list[Finding] = []
        forget_at = now if forget_now is None else min(now, forget_now)  # as `Driver.sweep`
        for slot, entry in list(self._cache.items()):
            rule_id, key = split_slot(slot)
            at = forget_at if rule_id in self._forgetful else now
            findings.extend(self.ruleset.sweep(self.ruleset.rules[rule_id], key, entry.state, at))
        return findings

    def _is_due(self, slot: str, entry: Any, now: datetime) -> bool:
        return True

    def may_sweep(self, partition: int, now: datetime) -> bool:
        return True


def test_sweeping_only_due_states_finds_what_sweeping_everything_finds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = random.Random(7)
    # Delays up to 30 minutes, beyond the lateness: some records are rejected as too late.
    delayed = [(e.time + timedelta(seconds=rng.uniform(0, 1800)), e) for e in journeys()]
    # Plus, on time, a kickoff so late it is no longer awaited (after deadline + window) and one
    # that still resolves its alert.
    extra = [
        closed("x1", timedelta(hours=1)),
        closed("x2", timedelta(hours=1)),
        kickoff("x2", timedelta(days=5)),
        kickoff("x1", timedelta(days=7, hours=2)),
        waiver("c0", timedelta(days=8)),
    ]
    arrived = [e for _, e in sorted([*delayed, *((e.time, e) for e in extra)], key=lambda p: p[0])]
    lines = [encode(e) for e in arrived]

    fast = run(lines)
    monkeypatch.setattr(replay_module, "Driver", SweepEverything)
    reference = run(lines)

    def seen(result: ReplayResult) -> list[tuple[Any, ...]]:
        return sorted(
            (a.rule_id, a.key, a.status, a.fingerprint, a.event_time, a.detected_at, a.message)
            for a in result.alerts
        )

    assert fast.rejected and fast.rejected == reference.rejected
    assert seen(fast) == seen(reference)
    assert [a.status for a in fast.alerts if a.key == "x1"] == ["firing"]
    assert [a.status for a in fast.alerts if a.key == "x2"] == ["firing", "resolved"]


def test_simulated_traffic_gives_the_alerts_of_sweeping_everything(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The bench's kind of input (every shipped rule, many customers, days of traffic, some
    records out of order within the lateness) through the shipped pack: the due index and the
    decoder's fast pass find exactly what sweeping every state at every step finds."""
    end = datetime(2026, 6, 1, tzinfo=UTC)
    made = Simulator(seed=3, customers=30).backfill(end - timedelta(days=6), end, 250)
    # A record no rule reads every 10 minutes moves the clock as dense traffic would, so a
    # deadline swept at the wrong time shows in the alert's detection time.
    made += [
        Event(id=f"tick-{n}", source="ops", type="clock.tick", time=end - n * TICK, subject="ops")
        for n in range(6 * 24 * 6)
    ]
    rng = random.Random(5)
    arrived = sorted(made, key=lambda e: e.time + timedelta(seconds=rng.uniform(0, 240)))
    lines = [encode(e) for e in arrived]
    loaded = load_rules([RULES])
    lateness = timedelta(minutes=5)

    def alerts() -> list[tuple[Any, ...]]:
        result = replay(lines, Ruleset(loaded.rules, lateness), lateness)
        assert not result.rejected
        return sorted(
            (a.rule_id, a.key, a.status, a.fingerprint, a.event_time, a.detected_at, a.message)
            for a in result.alerts
        )

    fast = alerts()
    monkeypatch.setattr(replay_module, "Driver", SweepEverything)
    assert fast == alerts()
    fired = {a[0] for a in fast}
    assert len(fired) >= 4 and STALLED in fired, fired  # deadlines too, not only matches


def test_a_retry_with_another_payload_is_a_duplicate_not_a_crash() -> None:
    """Records with the same time, source and id but different content (a producer's retry
    that changed the payload) are ordered by arrival: the first counts, the others are
    duplicates (they could not be compared, and the reorder buffer raised TypeError)."""
    first = charge("c1", timedelta(hours=1), amount=25)
    retry = first.model_copy(update={"data": {"fee_code": "late_fee", "amount": 99}})
    lines = [encode(waiver("c1", timedelta(0))), *(encode(e) for e in (first, retry, retry))]
    result = run(lines)
    assert result.duplicates == 2
    [alert] = result.alerts
    assert alert.rule_id == WAIVED and "25" in alert.message and "99" not in alert.message
