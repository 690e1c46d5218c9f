"""A matcher may leave out `type` and select with `where` alone, as Falco conditions do; such
rules sit in a small any-type bucket, off the per-type index the other rules use."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from monitor.engine import Ruleset
from monitor.errors import IssueCode
from monitor.events import Event
from monitor.rules import load_rules
from tests.unit.engine.harness import EngineHarness

RULES = """\
version: 1
lists:
  contact_types: [call.made, email.sent, sms.sent]
rules:
  - id: any-contact-burst
    title: Three contacts in a day, whatever their channel
    kind: burst
    match: {where: "event.type in contact_types"}
    threshold: 3
    within: 1d
    message: "{{ key }} was contacted {{ count }} times"
  - id: typed
    title: A typed rule
    kind: contradiction
    first: {source: support, type: fee.waiver_promised}
    then: {source: billing, type: invoice.charged}
    within: 1d
"""
T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


def _event(n: int, type_: str) -> Event:
    return Event(
        id=f"e{n}", source="sales", type=type_, time=T0 + timedelta(hours=n), subject="c1", data={}
    )


def _ruleset(tmp_path: Path, text: str = RULES) -> Ruleset:
    (tmp_path / "r.yaml").write_text(text)
    loaded = load_rules([tmp_path])
    assert loaded.errors == []
    return Ruleset(loaded.rules)


def test_a_where_only_matcher_selects_events_of_any_listed_type(tmp_path: Path) -> None:
    detector = EngineHarness(_ruleset(tmp_path))
    fired = []
    for n, type_ in enumerate(["call.made", "deal.closed", "email.sent", "sms.sent"]):
        event = _event(n, type_)
        fired += [f.rule.id for f in detector.process(event, event.time)]
    assert fired == ["any-contact-burst"]


def test_any_type_rules_are_apart_from_the_type_index(tmp_path: Path) -> None:
    ruleset = _ruleset(tmp_path)
    assert [r.rule.id for r in ruleset.routes(_event(0, "something.else"))] == ["any-contact-burst"]
    charge = _event(0, "invoice.charged").model_copy(update={"source": "billing"})
    assert sorted(r.rule.id for r in ruleset.routes(charge)) == ["any-contact-burst", "typed"]
    assert all("any-contact-burst" not in [r.id for r, _ in v] for v in ruleset._by_type.values())


def test_a_matcher_with_neither_type_nor_where_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(
        RULES.replace('match: {where: "event.type in contact_types"}', "match: {source: sales}")
    )
    loaded = load_rules([tmp_path])
    assert [(i.code, i.location.line) for i in loaded.errors] == [(IssueCode.MISSING_FIELD, 8)]
