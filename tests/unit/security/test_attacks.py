"""The limits issue 20's attack needed, one behaviour each (the worker-level proof is
tests/integration/test_attacks.py)."""

from __future__ import annotations

import logging
import time
from typing import Any

import cel
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from monitor.alerts.secrets import MASK, RedactingFilter, Redactor, expand
from monitor.config.locate import alias_issue
from monitor.errors import IssueCode
from monitor.events.rejects import bounded_dead_letter
from monitor.metrics import MAX_LABEL_CHARS, Metrics
from monitor.rules.celcost import estimate
from monitor.rules.sandbox import weight
from monitor.rules.templates import MessageTemplate, render_failures

# --- CEL: the estimate bounds the measured time ---------------------------------------------

# (expression, input list) pairs the library evaluates at very different speeds; the estimate
# must grow with each one's real cost. `filter` and `map` copy what they built so far, deeply,
# at every step: a whole-range filter over 1,000 items took 190 ms where `exists` took 0.7 ms.
TIMED = [
    ("l.exists(i, i == 2)", [1] * 1000),
    ("l.all(i, i == 1)", [1] * 1000),
    ("l.filter(i, i == 1).size() < 0", [1] * 400),
    ("l.map(i, i).size() < 0", [1] * 400),
    ("l.filter(i, true).size() < 0", [[1] * 100] * 40),
    ("l.map(x, l + l).size() < 0", list(range(40))),
]
NS_PER_UNIT = 5_000  # measured 160-700 ns per value visited or copied; 5 µs allows a busy machine


@pytest.mark.parametrize(("expression", "items"), TIMED)
def test_cel_estimate_bounds_the_measured_time(expression: str, items: list[object]) -> None:
    program = cel.compile(expression)
    flat = sum(len(i) if isinstance(i, list) else 1 for i in items)
    cost = estimate(expression, len(items), flat).iterations
    best = min(_timed(program, items) for _ in range(3))
    assert best <= cost * NS_PER_UNIT / 1e9, (expression, cost, best)


def _timed(program: Any, items: list[object]) -> float:  # a cel program: the library is untyped
    started = time.perf_counter()
    program.execute({"l": items})
    return time.perf_counter() - started


def test_filter_and_map_over_an_event_list_cost_its_length_times_an_event() -> None:
    assert estimate("then.data.items.filter(i, i == 1).size() < 0", 1000, 131072).iterations > 10**8
    assert estimate("then.data.items.exists(i, i == 1)", 1000, 131072).iterations == 1000
    assert estimate("[1, 2, 3].map(x, x * 2).size() > 0", 1000, 131072).iterations == 9


# --- templates ------------------------------------------------------------------------------


def test_template_weight_counts_shared_lists_each_time_and_stops_at_the_limit() -> None:
    inner = list(range(1000))
    assert weight([inner] * 8000, 10_000) > 10_000
    # the dict, its two keys, the list and its two items, the string's three characters
    assert weight({"a": [1, 2], "b": "xyz"}, 100) == 1 + 2 + 1 + 2 + 3


def test_template_that_builds_64_million_values_falls_back_and_is_counted() -> None:
    template = MessageTemplate.build("{{ [[range(1000)|list] * 8000] * 8000 }}")
    template = MessageTemplate(template.text, template.compiled, rule_id="bomb")
    before = render_failures["bomb"]
    started = time.perf_counter()
    assert template.render({}, "FALLBACK") == "FALLBACK"
    assert time.perf_counter() - started < 1
    assert render_failures["bomb"] == before + 1


def test_memory_error_while_rendering_falls_back() -> None:
    class Exhausting:
        def __str__(self) -> str:
            raise MemoryError

    template = MessageTemplate.build("{{ value }}")
    assert template.render({"value": Exhausting()}, "FALLBACK") == "FALLBACK"


# --- YAML -----------------------------------------------------------------------------------


def test_alias_bomb_is_refused_from_parser_events() -> None:
    text = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 10)}]\n" for n in range(1, 9)
    )
    issue = alias_issue("bomb.yaml", text)
    assert issue is not None and issue.code == IssueCode.YAML_ALIASES


def test_a_few_aliases_are_fine() -> None:
    assert alias_issue("ok.yaml", "a: &x {b: 1}\nc: *x\nd: [*x, *x]\n") is None


# --- dead letters ---------------------------------------------------------------------------


def test_dead_letter_of_an_oversized_record_fits_and_keeps_its_original_size() -> None:
    value = b"v" * 2_000_000
    headers = [("ce_subject", b"s" * 600_000)]
    key, cut, out = bounded_dead_letter(b"k", value, [("cx_reject_reason", b"x")], headers, 10_000)
    assert len(key or b"") + len(cut) + sum(len(n) + len(v) for n, v in out) <= 10_000
    assert dict(out)["cx_original_bytes"] == b"2000000" and value.startswith(cut)
    assert out[0] == ("cx_reject_reason", b"x")


def test_dead_letter_that_fits_is_unchanged() -> None:
    assert bounded_dead_letter(b"k", b"v", [("r", b"x")], [("h", b"y")], 100) == (
        b"k",
        b"v",
        [("r", b"x"), ("h", b"y")],
    )


# --- secrets and metric labels ---------------------------------------------------------------


def test_short_secrets_are_masked_where_they_stand_alone() -> None:
    redactor = Redactor()
    url = expand("https://hooks.example.com/x/${SHORT}?a=1", {"SHORT": "k3y9z"}, redactor)
    line = f"POST {url} failed; retry 2 of 5 for k3y9z (not k3y9zz)"
    redacted = redactor.redact(line)
    assert "k3y9z " not in redacted and "/k3y9z?" not in redacted
    assert f"/{MASK}?" in redacted and "k3y9zz" in redacted


def test_redacted_log_records_format_with_any_formatter() -> None:
    redactor = Redactor()
    redactor.remember("s3cret")
    record = logging.LogRecord("x", logging.ERROR, "f", 1, "sent %s to %s", ("a", "s3cret"), None)
    RedactingFilter(redactor).filter(record)
    assert record.args == () and record.getMessage() == f"sent a to {MASK}"


def test_over_long_types_and_departments_count_as_other() -> None:
    metrics = Metrics(CollectorRegistry())
    metrics.count_consumed("support", "t" * (MAX_LABEL_CHARS + 1))
    metrics.count_consumed("d" * (MAX_LABEL_CHARS + 1), "x")
    text = generate_latest(metrics.registry).decode()
    assert 'department="support",type="other"' in text
    assert 'department="other",type="other"' in text
    assert "t" * (MAX_LABEL_CHARS + 1) not in text and "d" * (MAX_LABEL_CHARS + 1) not in text


def test_state_over_its_byte_bound_drops_the_oldest_entries() -> None:
    from datetime import UTC, datetime, timedelta

    from monitor.engine.state import Held, KeyState
    from monitor.events import EventRef

    start = datetime(2026, 5, 1, tzinfo=UTC)
    state = KeyState(
        held=[
            Held(
                "first",
                EventRef(
                    f"w{n}",
                    "support",
                    "t",
                    start + timedelta(seconds=n),
                    "c",
                    {"note": "x" * 10_000},
                ),
            )
            for n in range(10)
        ]
    )
    assert state.shrink(35_000) == 7
    assert [h.event.id for h in state.held] == ["w7", "w8", "w9"]
    assert state.shrink(35_000) == 0
