"""A reload or a takeover of many states is swept and indexed over several calls, so no single
sweep holds the worker's event loop for long (issue 20, item 6)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.engine import Ruleset
from monitor.engine import driver as driver_module
from monitor.engine import indexing as indexing_module
from monitor.engine.driver import DictStore, Driver
from monitor.events import Event
from monitor.rules import load_rules

RULES = Path(__file__).resolve().parents[3] / "rules"


def test_overdue_states_are_indexed_and_swept_a_batch_at_a_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(driver_module, "SWEEP_BATCH", 7)
    monkeypatch.setattr(indexing_module, "INDEX_BATCH", 11)
    rules = load_rules([RULES]).rules
    now = datetime.now(UTC)
    store = DictStore()
    loaded = Driver(Ruleset(rules), store)
    for n in range(40):  # deals closed 4 days ago: each handoff SLA (3 days) has passed
        event = Event(
            id=f"d{n}",
            source="sales",
            type="deal.closed",
            time=now - timedelta(days=4),
            subject=f"c{n}",
            data={"deal_id": f"D-{n}"},
        ).ref()
        for key, rule_ids in loaded.routes(event).items():
            loaded.apply(0, key, event, rule_ids, now - timedelta(days=4))
    loaded.commit()

    restarted = Driver(Ruleset(rules), store)  # a new worker taking the partition over
    restarted.owned = {0}
    fired: list[str] = []
    calls = 0
    while len(fired) < 40 and calls < 100:
        findings = restarted.sweep(0, now)
        restarted.commit()
        assert len(findings) <= 7  # never more than a batch in one call
        fired.extend(f.key for f in findings if f.rule.id == "sales-onboarding-handoff-stalled")
        calls += 1
    assert sorted(fired) == sorted(f"c{n}" for n in range(40))
    assert calls >= 40 // 7  # spread over calls
    assert restarted.sweep(0, now) == []  # each fired once
    # the table-size gauges' figures: counted while indexing, kept up to date by the writes
    held = store.partitions[0]
    assert restarted.table_size() == (len(held), sum(len(raw) for raw in held.values()))
