"""Why a record was refused: a small fixed set of reasons, safe to use as a metric label."""

from __future__ import annotations

from enum import StrEnum

from monitor.errors import CxmonError


class RejectReason(StrEnum):
    """Every reason a record goes to the dead-letter topic instead of the engine."""

    TOO_LARGE = "too_large"
    INVALID_UTF8 = "invalid_utf8"
    BAD_JSON = "bad_json"
    NOT_AN_OBJECT = "not_an_object"
    BAD_SPECVERSION = "bad_specversion"
    MISSING_FIELD = "missing_field"
    BAD_FIELD = "bad_field"
    BAD_TIME = "bad_time"
    BAD_DATA = "bad_data"
    TOO_DEEP = "too_deep"
    TOO_LATE = "too_late"
    TIME_OUT_OF_RANGE = "time_out_of_range"
    MAPPING_FAILED = "mapping_failed"
    INTERNAL_ERROR = "internal_error"


class Rejected(CxmonError):
    """A record that cannot become an event; carries the reason and a human detail."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


DLQ_HEADER_BYTES = 1024  # each copied header of an oversized record keeps at most this much


def bounded_dead_letter(
    key: bytes | None,
    value: bytes,
    reject_headers: list[tuple[str, bytes]],
    original_headers: list[tuple[str, bytes]],
    limit: int,
) -> tuple[bytes | None, bytes, list[tuple[str, bytes]]]:
    """A dead-letter record (key, value, headers) of at most `limit` bytes in all.

    The record is the original one with the reject headers first. If it would not fit (the
    producer refuses a record over its request size, which would lose the reject), the key and
    every copied header are cut to `DLQ_HEADER_BYTES`, the value to what room is left, and
    `cx_truncated` plus `cx_original_bytes` (the original value's size) say so.
    """

    def size(k: bytes | None, v: bytes, hs: list[tuple[str, bytes]]) -> int:
        return len(k or b"") + len(v) + sum(len(n) + len(h) for n, h in hs)

    headers = [*reject_headers, *original_headers]
    if size(key, value, headers) <= limit:
        return key, value, headers
    cut = DLQ_HEADER_BYTES
    key = key[:cut] if key is not None else None
    headers = [
        *reject_headers,
        ("cx_truncated", b"true"),
        ("cx_original_bytes", str(len(value)).encode()),
        *[(name[:cut], raw[:cut]) for name, raw in original_headers],
    ]
    room = limit - size(key, b"", headers)
    while room < 0 and len(headers) > len(reject_headers) + 2:
        headers.pop()  # a record with very many headers: drop copies from the end
        room = limit - size(key, b"", headers)
    return key, value[: max(room, 0)], headers
