"""`decode_ref`, the worker's decoder, gives exactly `decode(...).ref()` or the same rejection."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.events import Rejected
from monitor.events.codec import decode, encode_binary
from monitor.events.fast import decode_ref
from tests.unit.conftest import event

BASE = (
    '{"specversion":"1.0","id":"inv-1","source":"/billing/eu","type":"invoice.charged",'
    '"time":"%s","subject":"c1","datacontenttype":"application/json","data":%s}'
)
RECORDS = [
    BASE % ("2026-05-01T09:00:00Z", '{"amount": 25}'),
    BASE % ("2026-05-01T11:00:00+02:00", '{"amount": 25}'),  # converted to UTC
    BASE % ("2026-05-01T09:00:00.123456Z", "null"),
    BASE % ("2026-05-01T09:00:00Z", '{"big": 123456789012345678901234567890}'),  # > 64 bits
    BASE % ("2026-05-01T09:00:00Z", '{"a": NaN, "b": Infinity, "c": -Infinity}'),
    BASE % ("2026-05-01T09:00:00Z", '{"fee": "late_fee", "fee": "setup_fee"}'),  # last wins
    BASE % ("2026-05-01T09:00:00Z", '{"a": {"b": {"c": [1, 2, {"d": 1e400}]}}}'),
    BASE % ("2026-05-01 09:00:00Z", "{}"),  # unusual time: the SDK judges it
    BASE % ("\u0662\u0660\u0662\u0666-05-01T09:00:00Z", "{}"),  # digits that \d matches, not ASCII
    BASE % ("0001-01-01T00:00:00+01:00", "{}"),  # out of range once in UTC
    BASE % ("2026-05-01T09:00:00Z", "[1]"),
    BASE % ("2026-05-01T09:00:00Z", '{"a": ' * 40 + "1" + "}" * 40),  # too deep
    '{"specversion":"1.0","id":"","source":"s","type":"t","time":"2026-05-01T09:00:00Z"}',
    '{"specversion":"1.0","id":"x","source":"s","type":"t","time":"2026-05-01T09:00:00Z",'
    '"subject":"c1","ext":"an extension attribute"}',
    "not json",
    "[]",
    # the plain pass's own doubts: each goes to `decode`, which must give the same outcome
    BASE % ("2026-05-01T09:00:00Z", '{"a": [1, 2], "b": {"c": null}}'),  # nested
    BASE % ("2026-05-01T09:00:00Z", "{" + ",".join(f'"k{i}": {i}' for i in range(1001)) + "}"),
    BASE.replace('"c1"', '"' + "c" * 257 + '"') % ("2026-05-01T09:00:00Z", "{}"),  # long subject
    BASE.replace('"specversion":"1.0",', "") % ("2026-05-01T09:00:00Z", "{}"),
    BASE.replace('"inv-1"', "7") % ("2026-05-01T09:00:00Z", "{}"),  # id not a string
    BASE.replace("application/json", "text/plain") % ("2026-05-01T09:00:00Z", '"x"'),
    BASE % ("2026-05-01T09:00:00Z", '{"a": "\\ud800"}'),  # a lone surrogate, as json reads it
    BASE % ("9999-12-31T23:59:59-01:00", "{}"),  # out of range once in UTC
    BASE % ("2026-02-30T09:00:00Z", "{}"),  # not a date
    # where orjson (the plain pass's parser) and json differ: each must come out as json reads it
    BASE % ("2026-05-01T09:00:00Z", '{"u64": 18446744073709551615, "i64": -9223372036854775808}'),
    BASE % ("2026-05-01T09:00:00Z", '{"big": 18446744073709551616}'),  # orjson: a float
    BASE % ("2026-05-01T09:00:00Z", '{"small": -9223372036854775809}'),  # orjson: a float
    BASE
    % ("2026-05-01T09:00:00Z", '{"wide": 1e19, "tiny": -1e-400, "max": 1.7976931348623157e308}'),
    BASE % ("2026-05-01T09:00:00Z", '{"over": 1e400}'),  # orjson refuses; json reads inf
    BASE % ("2026-05-01T09:00:00Z", '{"a": NaN}'),
    BASE % ("2026-05-01T09:00:00Z", '{"a": "\\udc00x", "b": "\\ud83d\\ude00"}'),  # lone low, a pair
    BASE % ("2026-05-01T09:00:00Z", '{"a": {"nested": 1}, "a": 2}'),  # duplicate: last wins
    BASE.replace('"subject":"c1"', '"subject":"c1","subject":"c2"')
    % ("2026-05-01T09:00:00Z", "{}"),
    BASE % ("2026-05-01T09:00:00Z", '{"nul": "\\u0000", "ctl": "\x01"}'),  # raw control char
    BASE % ("2026-05-01T09:00:00Z", '{"a": ' + "[" * 3000 + "]" * 3000 + "}"),  # beyond any depth
    "\ufeff" + BASE % ("2026-05-01T09:00:00Z", "{}"),  # a byte order mark
]


def outcome(decoder: Any, value: bytes | None, headers: Any = None) -> Any:
    try:
        result = decoder(value, headers, max_depth=32)
    except Rejected as rejected:
        return ("rejected", rejected.reason, rejected.detail)
    return json.dumps(result if decoder is decode_ref else result.ref(), default=repr)


@pytest.mark.parametrize("record", RECORDS)
def test_structured_record_decodes_as_decode_does(record: str) -> None:
    raw = record.encode()
    expected = outcome(decode, raw)
    got = outcome(decode_ref, raw)
    assert got == expected
    if expected[0] != "rejected":
        assert decode_ref(raw) == decode(raw).ref()


def stdlib_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every orjson parse fail, so the plain pass reads records with `json` alone."""

    def refuse(_value: Any) -> Any:
        raise orjson.JSONDecodeError("refused by the test", "", 0)

    monkeypatch.setattr("monitor.events.fast.orjson.loads", refuse)


@pytest.mark.parametrize("record", RECORDS)
def test_orjson_reads_every_record_as_json_does(
    record: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = record.encode("utf-8", "surrogatepass")
    fast = outcome(decode_ref, raw)
    stdlib_only(monkeypatch)
    assert outcome(decode_ref, raw) == fast  # the same event (types too, via repr) or rejection


# JSON texts of scalars, including those where orjson and json differ
SCALARS = st.one_of(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text()).map(json.dumps),
    st.integers(min_value=2**62, max_value=2**66).map(str),
    st.integers(min_value=-(2**66), max_value=-(2**62)).map(str),
    st.text().map(lambda text: json.dumps(text, ensure_ascii=False)),
    st.sampled_from(["1e400", "-1e400", "1E19", "-0.0", "0.1e1", '"\\ud800"', '"\\udfff"']),
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=8), SCALARS, max_size=6))
def test_orjson_reads_any_flat_data_as_json_does(data: dict[str, str]) -> None:
    body = "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in data.items()) + "}"
    raw = (BASE % ("2026-05-01T09:00:00Z", body)).encode("utf-8", "surrogatepass")
    fast = outcome(decode_ref, raw)
    with pytest.MonkeyPatch.context() as patch:
        stdlib_only(patch)
        assert outcome(decode_ref, raw) == fast


def test_big_integers_nan_and_duplicate_keys_stay_as_json_reads_them() -> None:
    ref = decode_ref(RECORDS[3].encode())
    assert ref.data == {"big": 123456789012345678901234567890}
    ref = decode_ref(RECORDS[4].encode())
    assert ref.data["b"] == float("inf") and ref.data["a"] != ref.data["a"]
    assert decode_ref(RECORDS[5].encode()).data == {"fee": "setup_fee"}


def test_binary_record_decodes_as_decode_does() -> None:
    headers, value = encode_binary(event("billing", "invoice.charged", amount=3))
    assert decode_ref(value, headers) == decode(value, headers).ref()
    assert outcome(decode_ref, value, headers[1:]) == outcome(decode, value, headers[1:])
