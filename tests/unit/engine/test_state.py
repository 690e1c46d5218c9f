"""Stored state keeps the JSON layout it always had, so a worker reads what an older one wrote."""

from __future__ import annotations

import json
import math
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from monitor.engine.state import Expectation, Firing, Held, KeyState, ref_from_json, ref_json
from monitor.engine.stored import encode_parts, encode_stored, ref_text, state_text
from monitor.events import EventRef
from monitor.events.fast import decode_ref

T0 = datetime(2026, 5, 1, 9, 30, tzinfo=UTC)
REF = EventRef("e1", "billing", "invoice.charged", T0, "c1", {"amount": 25})
BARE = EventRef("e2", "support", "fee.waiver_promised", T0 + timedelta(microseconds=5), "c1")

# The stored layout of REF and BARE, spelled out: a change to it must show here.
REF_JSON = {
    "id": "e1",
    "source": "billing",
    "type": "invoice.charged",
    "time": "2026-05-01T09:30:00Z",
    "subject": "c1",
    "data": {"amount": 25},
}
BARE_JSON = {
    "id": "e2",
    "source": "support",
    "type": "fee.waiver_promised",
    "time": "2026-05-01T09:30:00.000005Z",
    "subject": "c1",
}

STORED = {
    "held": [
        {
            "slot": "first",
            "event": REF_JSON,
        },
        {
            "slot": "match",
            "event": BARE_JSON,
            "tag": "'x'",
        },
    ],
    "expectations": [
        {
            "opened_by": BARE_JSON,
            "due": "2026-05-01T11:30:00+02:00",
            "breached_at": "2026-05-01T10:00:00Z",
        }
    ],
    "firing": [
        {
            "identity": ["billing|e1"],
            "bindings": {"first": REF_JSON},
            "event_time": "2026-05-01T09:30:00Z",
        }
    ],
    "last_fired": "2026-05-01T09:30:00Z",
    "seen": {"billing|e1": "2026-05-01T09:30:00Z"},
}


def state() -> KeyState:
    return KeyState(
        held=[Held("first", REF), Held("match", BARE, tag="'x'")],
        expectations=[
            Expectation(
                BARE,
                due=T0.astimezone(timezone(timedelta(hours=2))),
                breached_at=T0 + timedelta(minutes=30),
            )
        ],
        firing=[Firing(("billing|e1",), {"first": REF}, T0)],
        last_fired=T0,
        seen={"billing|e1": T0},
    )


def test_state_json_keeps_its_stored_layout() -> None:
    assert state().to_json() == STORED


def test_state_text_is_the_json_of_the_stored_layout_byte_for_byte() -> None:
    compact = json.JSONEncoder(separators=(",", ":")).encode
    assert state_text(state()) == compact(STORED)
    assert state_text(KeyState()) == "{}"
    odd = EventRef('é"1', "sales", "deal.closed", T0, "c\n1", {"n": 1.5, "big": 2**70})
    held = KeyState(held=[Held("then", odd, link="x|y")], seen={"k\u2028": T0})
    assert state_text(held) == compact(held.to_json())


def test_stored_state_reads_back_equal() -> None:
    assert KeyState.from_json(STORED) == state()


def test_empty_state_is_an_empty_dict_and_reads_back_from_none() -> None:
    assert KeyState().to_json() == {}
    assert KeyState.from_json(None) == KeyState() == KeyState.from_json({})


def test_a_during_rules_links_are_typed_in_memory_and_stored_as_before() -> None:
    source = "kafka://support/eu"  # a source with a colon: the link is split at the first one
    opened = EventRef("i1", source, "incident.opened", T0, "c1")
    stored = {
        "held": [
            {"slot": "open", "event": ref_json(opened)},
            {"slot": f"close:{source}|i1", "event": REF_JSON},
            {"slot": f"fired:{source}|i1", "event": ref_json(opened)},
        ]
    }
    held = KeyState.from_json(stored).held
    assert [(h.slot, h.link) for h in held] == [
        ("open", None),
        ("close", f"{source}|i1"),
        ("fired", f"{source}|i1"),
    ]
    assert KeyState(held=held).to_json() == stored


def test_a_stored_value_is_the_json_of_its_dict_byte_for_byte() -> None:
    # encode_parts writes due times and tags without the encoder (a float as its repr)
    for due in (None, 1.5, 1e16, 1764547200.123456, 0.1 + 0.2, 1e-7, -0.0, float("inf")):
        for oldest in (None, 3.25, 1e22):
            layout = {"p": 3, "r": 'é"t', "s": {}, "d": due, "o": 1, "b": 0}
            if oldest is not None:
                layout["w"] = oldest
            assert encode_parts(3, 'é"t', "{}", due, 1, 0, oldest) == encode_stored(layout)


def test_an_events_text_is_made_once_and_is_not_part_of_its_value() -> None:
    ref = EventRef("e9", "billing", "invoice.charged", T0, "c1", {"amount": 25})
    first = state_text(KeyState(held=[Held("then", ref)]))
    assert ref.stored_text is not None
    assert ref == EventRef("e9", "billing", "invoice.charged", T0, "c1", {"amount": 25})
    assert state_text(KeyState(held=[Held("then", ref)])) == first


def test_an_entrys_text_is_made_once_and_a_changed_copy_makes_its_own() -> None:
    compact = json.JSONEncoder(separators=(",", ":")).encode
    held, waiting = Held("first", REF), Expectation(BARE, due=T0)
    state = KeyState(held=[held], expectations=[waiting])
    first = state_text(state)
    assert held.stored_text is not None and waiting.stored_text is not None
    assert held == Held("first", REF) and waiting == Expectation(BARE, due=T0)
    assert state_text(state) == first == compact(state.to_json())
    # a sweep marks a breach on a copy (`dataclasses.replace`), which must not carry the text
    state.expectations = [replace(waiting, breached_at=T0 + timedelta(minutes=1))]
    assert state_text(state) == compact(state.to_json()) != first


def test_an_events_time_is_written_as_time_json_writes_it_whatever_text_it_was_read_from() -> None:
    compact = json.JSONEncoder(separators=(",", ":")).encode
    texts = [
        "2026-05-01T09:30:00Z",  # these four are written as they were read
        "2026-05-01T09:30:00.000005Z",
        "2026-05-01T09:30:00.123456Z",
        "0999-05-01T09:30:00Z",
        "2026-05-01T09:30:00.000000Z",  # and these are not
        "2026-05-01T09:30:00.5Z",
        "2026-05-01T09:30:00.500Z",
        "2026-05-01T09:30:00+00:00",
        "2026-05-01T11:30:00+02:00",
        "2026-05-01 09:30:00Z",
        "20260501T093000.000005Z",
        "2026-05-01T09:30Z",
    ]
    for n, text in enumerate(texts):
        record = {"specversion": "1.0", "id": "e", "source": "billing", "type": "t", "time": text}
        read = decode_ref(json.dumps({**record, "subject": "c1"}).encode()).time_text
        assert read == (text if n < 4 else None), text  # only the stored form is kept
        stored = ref_from_json({**record, "subject": "c1"}).time_text
        assert stored == read, text
        for moment in (datetime.fromisoformat(text).astimezone(UTC), datetime.fromisoformat(text)):
            ref = EventRef("e", "billing", "invoice.charged", moment, "c1", {}, read)
            assert ref_text(ref) == compact(ref_json(ref)), text
            seen = KeyState(seen={"billing|e": moment})  # reads the moment's text `ref` made
            assert state_text(seen) == compact(seen.to_json()), text


def test_event_data_is_written_as_json_writes_it_whichever_encoder_writes_it() -> None:
    compact = json.JSONEncoder(separators=(",", ":")).encode
    rng = random.Random(7)
    ascii_text = [chr(c) for c in range(128)]  # control characters, quotes, backslash, DEL
    cases: list[dict[str, Any]] = [
        {"s": "".join(rng.choice(ascii_text) for _ in range(rng.randrange(12))), "n": n}
        for n in (0, -1, 2**63 - 1, -(2**63), 2**64 - 1, 2**64, -(2**63) - 1, 10**30)
        for _ in range(20)
    ]
    cases += [
        {"b": True, "f": False, "z": None},
        {"é": "x"},  # a key orjson would write unescaped
        {"t": "règle \u2028 客户 \U0001f600"},
        {"x": 1.5, "y": 1e16, "w": 1e-7, "nan": math.nan, "inf": -math.inf},
        {"nested": {"a": [1, "b", None]}},
        {"": ""},
    ]
    for data in cases:
        ref = EventRef("e", "billing", "invoice.charged", T0, "c1", data)
        assert ref_text(ref) == compact(ref_json(ref)), data
