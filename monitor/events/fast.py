"""`decode_ref`: the worker's and replay's decoder, straight to the engine's event reference.

The common record (structured JSON, plain attributes, flat `data`) is checked here in one pass,
parsed with orjson; any other record, or one this pass doubts, goes through `codec.decode`,
which gives the reason for a rejection.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime

import orjson

from monitor.events.codec import (
    DEFAULT_MAX_ATTRIBUTE_CHARS,
    DEFAULT_MAX_DATA_DEPTH,
    DEFAULT_MAX_DATA_ITEMS,
    DEFAULT_MAX_EVENT_BYTES,
    PLAIN_KEYS,
    RFC3339,
    Headers,
    decode,
)
from monitor.events.envelope import EventRef

# `RFC3339` with ASCII digits only, twice as fast as the Unicode `\d`: a time with other digits,
# which that pattern matches, fails `fromisoformat` below all the same, and `decode` judges it.
_RFC3339 = re.compile(RFC3339.pattern, re.ASCII)
# The form state stores a time in (`time_json`'s): whole seconds or six fraction digits, not
# all zero, and `Z`; not hour 24, which a parser may read as the next midnight. A time already in
# this form is written into state as it was read (`stored.ref_text`).
STORED_TIME = re.compile(r"\d{4}-\d\d-\d\dT(?!24)\d\d:\d\d:\d\d(?:\.(?!000000)\d{6})?Z", re.ASCII)
_WIDE = 2.0**63  # orjson reads integers within 64 bits exactly, wider ones as floats


def decode_ref(
    value: bytes | None,
    headers: Headers | None = None,
    *,
    max_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    max_depth: int = DEFAULT_MAX_DATA_DEPTH,
    max_attribute_chars: int = DEFAULT_MAX_ATTRIBUTE_CHARS,
    max_items: int = DEFAULT_MAX_DATA_ITEMS,
) -> EventRef:
    """`decode(...).ref()`, without building the pydantic `Event` for the common record.

    The common record is structured JSON without headers, with exactly the plain attributes
    (what `_plain_structured` accepts), every attribute within its limit and `data` an object
    of scalars: it is checked here in one pass, and all `Event` would still do is convert the
    time to UTC. Any other record (or one this pass doubts) goes through `decode`, which
    parses it again and gives the reason for a rejection.
    """
    if not headers and value is not None and len(value) <= max_bytes:
        ref = _plain_ref(value, max_attribute_chars, max_depth, max_items)
        if ref is not None:
            return ref
    return decode(
        value,
        headers,
        max_bytes=max_bytes,
        max_depth=max_depth,
        max_attribute_chars=max_attribute_chars,
        max_items=max_items,
    ).ref()


def _plain_ref(value: bytes, chars: int, max_depth: int, max_items: int) -> EventRef | None:
    """The event of a common record (see `decode_ref`), or None: `decode` must judge it.

    Parsed with orjson, ~4x faster than `json` on these records; on any orjson error the record
    is parsed again with `json`, the reference (orjson refuses NaN, Infinity, numbers that
    overflow a double and lone surrogates, which `json` reads). orjson reads an integer beyond
    64 bits as a float, without an error, so a record whose `data` holds a float that large goes
    to `decode`, which reads it with `json`. Duplicate keys: both keep the last value where the
    first stood.
    """
    try:
        parsed = orjson.loads(value)
        wide = _WIDE
    except Exception:  # whatever orjson refuses, `json` judges as always
        try:
            parsed = json.loads(value.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            return None
        wide = math.inf
    if type(parsed) is not dict or not PLAIN_KEYS.issuperset(parsed):
        return None
    get = parsed.get
    id_, source, type_, subject, time = (
        get("id"),
        get("source"),
        get("type"),
        get("subject"),
        get("time"),
    )
    if (
        type(id_) is not str
        or type(source) is not str
        or type(type_) is not str
        or type(subject) is not str
        or type(time) is not str
        or not (0 < len(id_) <= chars and 0 < len(source) <= chars)
        or not (0 < len(type_) <= chars and 0 < len(subject) <= chars)
        or get("specversion") != "1.0"
        or get("datacontenttype", "application/json") != "application/json"
    ):
        return None
    stored_form = STORED_TIME.fullmatch(time) is not None  # which is RFC 3339, too
    if not stored_form and not _RFC3339.fullmatch(time):
        return None
    data = get("data")
    if data is None:
        data = {}
    elif type(data) is not dict or len(data) > max_items or max_depth < 1:
        return None
    else:
        for item in data.values():
            kind = type(item)
            if kind is dict or kind is list:
                return None  # nested: `decode` measures it
            if kind is float and not -wide < item < wide:
                return None  # maybe an integer beyond 64 bits that orjson made a float
    try:
        moment = datetime.fromisoformat(time).astimezone(UTC)
    except (ValueError, OverflowError):
        return None
    return EventRef(id_, source, type_, moment, subject, data, time if stored_form else None)
