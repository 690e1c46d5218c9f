"""A seeded generator of hostile Kafka records: every one must be dead-lettered with a reason.

Each record is (value, headers, the reasons it may be rejected with). The kinds cover what
producers outside our control send: invalid UTF-8, truncated JSON, wrong types, oversized
records, deep nesting, binary mode with missing `ce_*` headers, unknown `specversion`, and event
times far in the past or future.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

Record = tuple[bytes, list[tuple[str, bytes]], frozenset[str]]
REQUIRED = ("id", "source", "type", "time", "subject")


def _valid(rng: random.Random) -> dict[str, Any]:
    at = datetime.now(UTC) - timedelta(minutes=rng.randint(1, 600))
    return {
        "specversion": "1.0",
        "id": f"m-{rng.getrandbits(48):x}",
        "source": rng.choice(["billing", "support", "/sales/eu"]),
        "type": rng.choice(["invoice.charged", "fee.waiver_promised", "deal.closed"]),
        "time": at.isoformat().replace("+00:00", "Z"),
        "subject": f"fuzz-{rng.randint(0, 50)}",
        "data": {"fee_code": "late_fee", "amount": rng.randint(1, 99)},
    }


def _dump(body: Any) -> bytes:
    return json.dumps(body).encode()


def invalid_utf8(rng: random.Random) -> Record:
    raw = bytearray(_dump(_valid(rng)))
    raw.insert(rng.randint(1, len(raw) - 1), rng.choice([0xFF, 0xC3, 0x80, 0xFE]))
    return bytes(raw), [], frozenset({"invalid_utf8", "bad_json"})


def truncated_json(rng: random.Random) -> Record:
    raw = _dump(_valid(rng))
    return raw[: rng.randint(0, len(raw) - 1)], [], frozenset({"bad_json", "not_an_object"})


def wrong_types(rng: random.Random) -> Record:
    body = _valid(rng)
    name = rng.choice([*REQUIRED, "data"])
    body[name] = rng.choice([42, 3.5, True, ["x"], {"a": 1}]) if name != "data" else "text"
    if name == "data" and rng.random() < 0.5:
        body[name] = [1, 2, 3]
    return _dump(body), [], frozenset({"bad_field", "bad_time", "bad_data"})


def not_an_object(rng: random.Random) -> Record:
    value = rng.choice([[1, 2], "event", 17, None, True])
    return _dump(value), [], frozenset({"not_an_object"})


def missing_field(rng: random.Random) -> Record:
    body = _valid(rng)
    del body[rng.choice(REQUIRED)]
    return _dump(body), [], frozenset({"missing_field"})


def huge_string(rng: random.Random, limit: int) -> Record:
    body = _valid(rng)
    body[rng.choice(["subject", "id", "data"])] = "x" * rng.randint(limit, limit * 2)
    return _dump(body), [], frozenset({"too_large"})


def deep_nesting(rng: random.Random, depth_limit: int) -> Record:
    depth = rng.choice([depth_limit + 1, depth_limit + rng.randint(2, 40), 3000])
    body = _valid(rng)
    text = _dump(body).decode()
    nested = '{"a": ' * depth + "1" + "}" * depth
    return (
        text.replace('{"fee_code"', nested[:-1] + ', "fee_code"', 1).encode(),
        [],
        frozenset({"too_deep", "too_large"}),
    )


def binary_missing_headers(rng: random.Random) -> Record:
    body = _valid(rng)
    headers = [("ce_specversion", b"1.0")] + [
        (f"ce_{name}", str(body[name]).encode()) for name in REQUIRED
    ]
    dropped = rng.sample(range(1, len(headers)), rng.randint(1, 3))
    kept = [h for i, h in enumerate(headers) if i not in dropped]
    return _dump(body["data"]), kept, frozenset({"missing_field"})


def unknown_specversion(rng: random.Random) -> Record:
    version = rng.choice(["0.3", "2.0", "1", "", "1.0.1"])
    if rng.random() < 0.5:
        body = _valid(rng)
        body["specversion"] = version if version else 1.0
        return _dump(body), [], frozenset({"bad_specversion"})
    body = _valid(rng)
    headers = [("ce_specversion", version.encode())] + [
        (f"ce_{name}", str(body[name]).encode()) for name in REQUIRED
    ]
    return _dump(body["data"]), headers, frozenset({"bad_specversion"})


def far_time(rng: random.Random) -> Record:
    body = _valid(rng)
    body["time"] = rng.choice(
        [
            "0001-01-01T00:00:00Z",
            "0001-01-01T00:00:00+01:00",
            "1900-01-01T00:00:00Z",
            "2999-01-01T00:00:00Z",
            "9999-12-31T23:59:59Z",
            "9999-12-31T23:59:59-01:00",
            (datetime.now(UTC) + timedelta(days=rng.randint(2, 900))).isoformat(),
        ]
    )
    return _dump(body), [], frozenset({"time_out_of_range", "bad_time"})


def bad_time_text(rng: random.Random) -> Record:
    body = _valid(rng)
    body["time"] = rng.choice(["yesterday", "2026-13-01T00:00:00Z", "2026-05-01", "", "T"])
    return _dump(body), [], frozenset({"bad_time", "missing_field"})


def random_bytes(rng: random.Random) -> Record:
    raw = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 64)))
    return raw, [], frozenset({"invalid_utf8", "bad_json", "not_an_object"})


def generate(count: int, *, seed: int, max_bytes: int, max_depth: int) -> Iterator[Record]:
    """`count` malformed records, the kinds in rotation, their details random but seeded."""
    rng = random.Random(seed)
    kinds: list[Callable[[random.Random], Record]] = [
        invalid_utf8,
        truncated_json,
        wrong_types,
        not_an_object,
        missing_field,
        lambda r: huge_string(r, max_bytes),
        lambda r: deep_nesting(r, max_depth),
        binary_missing_headers,
        unknown_specversion,
        far_time,
        bad_time_text,
        random_bytes,
    ]
    for n in range(count):
        yield kinds[n % len(kinds)](rng)
