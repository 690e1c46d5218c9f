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
