"""The wire codec: CloudEvents records in, `Event` or a `Rejected` with its reason out."""

from __future__ import annotations

import json
from datetime import UTC
from typing import Any

import pytest

from monitor.events import Event, Rejected, RejectReason, department_of
from monitor.events.codec import decode, encode, encode_binary, to_structured_dict
from tests.unit.conftest import T0, event

DROP = object()  # marks an attribute to leave out of a record


def charge() -> Event:
    return event("billing", "invoice.charged", id="inv-1", fee_code="late_fee", amount=25)


def structured(**changes: Any) -> bytes:
    """A structured-mode record for `charge()`, with attributes replaced or dropped."""
    body = to_structured_dict(charge())
    for name, value in changes.items():
        if value is DROP:
            del body[name]
        else:
            body[name] = value
    return json.dumps(body).encode()


def binary(**changes: Any) -> tuple[list[tuple[str, bytes]], bytes]:
    """A binary-mode record for `charge()`, with `ce_*` headers replaced or dropped."""
    headers, value = encode_binary(charge())
    kept = [
        (name, changes.get(name, raw)) for name, raw in headers if changes.get(name) is not DROP
    ]
    return kept, value


def reason_of(value: bytes | None, headers: Any = None, **options: Any) -> RejectReason:
    with pytest.raises(Rejected) as caught:
        decode(value, headers, **options)
    return caught.value.reason


def test_structured_cloudevent_decodes_to_event() -> None:
    raw = (
        b'{"specversion": "1.0", "id": "inv-1", "source": "/billing/eu",'
        b' "type": "invoice.charged", "time": "2026-05-01T09:00:00Z", "subject": "c1",'
        b' "datacontenttype": "application/json", "data": {"amount": 25}}'
    )
    decoded = decode(raw)
    assert decoded == Event(
        id="inv-1",
        source="/billing/eu",
        type="invoice.charged",
        time=T0,
        subject="c1",
        data={"amount": 25},
    )


def test_decoded_time_is_normalised_to_utc() -> None:
    decoded = decode(structured(time="2026-05-01T11:00:00+02:00"))
    assert decoded.time == T0
    assert decoded.time.tzinfo == UTC


def test_encode_then_decode_round_trips() -> None:
    assert decode(encode(charge())) == charge()


def test_binary_mode_round_trips() -> None:
    headers, value = encode_binary(charge())
    assert decode(value, headers) == charge()


def test_binary_mode_accepts_headers_as_mapping() -> None:
    headers, value = encode_binary(charge())
    assert decode(value, dict(headers)) == charge()


def test_missing_data_becomes_empty_object() -> None:
    assert decode(structured(data=DROP)).data == {}


def test_record_over_the_limit_is_too_large() -> None:
    assert reason_of(encode(charge()), max_bytes=10) == RejectReason.TOO_LARGE


def test_binary_record_over_the_limit_is_too_large() -> None:
    headers, value = encode_binary(charge())
    assert reason_of(value, headers, max_bytes=3) == RejectReason.TOO_LARGE


def test_bytes_that_are_not_utf8_are_invalid_utf8() -> None:
    assert reason_of(b'{"id": "\xff"}') == RejectReason.INVALID_UTF8


def test_truncated_json_is_bad_json() -> None:
    assert reason_of(b'{"id": ') == RejectReason.BAD_JSON


def test_empty_record_is_bad_json() -> None:
    assert reason_of(None) == RejectReason.BAD_JSON


def test_json_array_is_not_an_object() -> None:
    assert reason_of(b"[1, 2]") == RejectReason.NOT_AN_OBJECT


def test_specversion_other_than_1_0_is_bad_specversion() -> None:
    assert reason_of(structured(specversion="0.3")) == RejectReason.BAD_SPECVERSION


@pytest.mark.parametrize("name", ["id", "type", "time", "subject", "source"])
def test_absent_required_attribute_is_missing_field(name: str) -> None:
    with pytest.raises(Rejected) as caught:
        decode(structured(**{name: DROP}))
    assert caught.value.reason == RejectReason.MISSING_FIELD
    assert name in caught.value.detail


def test_empty_id_is_missing_field() -> None:
    assert reason_of(structured(id="")) == RejectReason.MISSING_FIELD


def test_numeric_id_is_bad_field() -> None:
    assert reason_of(structured(id=7)) == RejectReason.BAD_FIELD


@pytest.mark.parametrize("time", ["yesterday", "01/05/2026 09:00", 1777626000])
def test_time_that_is_not_rfc3339_is_bad_time(time: Any) -> None:
    assert reason_of(structured(time=time)) == RejectReason.BAD_TIME


def test_time_without_offset_is_bad_time() -> None:
    assert reason_of(structured(time="2026-05-01T09:00:00")) == RejectReason.BAD_TIME


def test_data_that_is_a_list_is_bad_data() -> None:
    assert reason_of(structured(data=[1, 2])) == RejectReason.BAD_DATA


def test_binary_value_that_is_a_list_is_bad_data() -> None:
    headers, _ = encode_binary(charge())
    assert reason_of(b"[1, 2]", headers) == RejectReason.BAD_DATA


def test_binary_time_without_offset_is_bad_time() -> None:
    headers, value = binary(ce_time=b"2026-05-01T09:00:00")
    assert reason_of(value, headers) == RejectReason.BAD_TIME


def test_binary_without_subject_is_missing_field() -> None:
    headers, value = binary(ce_subject=DROP)
    assert reason_of(value, headers) == RejectReason.MISSING_FIELD


def test_binary_without_id_is_missing_field() -> None:
    headers, value = binary(ce_id=DROP)
    assert reason_of(value, headers) == RejectReason.MISSING_FIELD


def test_binary_without_time_is_missing_field() -> None:
    headers, value = binary(ce_time=DROP)
    assert reason_of(value, headers) == RejectReason.MISSING_FIELD


def test_binary_specversion_other_than_1_0_is_bad_specversion() -> None:
    headers, value = binary(ce_specversion=b"0.3")
    assert reason_of(value, headers) == RejectReason.BAD_SPECVERSION


@pytest.mark.parametrize(
    ("source", "department"),
    [
        ("billing", "billing"),
        ("/billing/eu", "billing"),
        ("kafka://billing/x", "billing"),
    ],
)
def test_department_is_first_segment_of_source(source: str, department: str) -> None:
    assert department_of(source) == department
