"""Bytes on the wire <-> `Event`, via the CloudEvents SDK (structured JSON and binary mode)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.exceptions import BaseCloudEventException
from cloudevents.core.formats.json import JSONFormat
from pydantic import ValidationError

from monitor.events.envelope import Event, EventRef
from monitor.events.rejects import Rejected, RejectReason

DEFAULT_MAX_EVENT_BYTES = 256 * 1024
DEFAULT_MAX_DATA_DEPTH = 32
# id, source, type and subject are names, not payloads: a few hundred characters is plenty, and
# each is copied into state, keyed records, alerts and (type, department) metric labels.
DEFAULT_MAX_ATTRIBUTE_CHARS = 256
# The most items in one array or object of `data`: CEL comprehensions walk them, and the
# bound keeps one evaluation's work a known multiple of it (docs/security.md).
DEFAULT_MAX_DATA_ITEMS = 1000
_FORMAT = JSONFormat()
_REQUIRED = ("id", "source", "type", "time", "subject")
PLAIN_KEYS = frozenset({*_REQUIRED, "specversion", "datacontenttype", "data"})
# RFC 3339 as producers write it; both `datetime.fromisoformat` and the SDK's parser read it alike.
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:\d{2})")

Headers = Mapping[str, bytes] | Iterable[tuple[str, bytes]]


def decode(
    value: bytes | None,
    headers: Headers | None = None,
    *,
    max_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    max_depth: int = DEFAULT_MAX_DATA_DEPTH,
    max_attribute_chars: int = DEFAULT_MAX_ATTRIBUTE_CHARS,
    max_items: int = DEFAULT_MAX_DATA_ITEMS,
) -> Event:
    """Parse one Kafka record into an `Event`, or raise `Rejected` with the reason.

    `max_bytes` bounds the value and the headers together (binary mode carries the attributes
    in headers). `max_depth` bounds the nesting of `data` (`{"a": 1}` is depth 1) and
    `max_items` the items of any array or object in it: rules and templates walk it, and a
    producer must not be able to make that walk arbitrarily long. `max_attribute_chars` bounds
    id, source, type and subject.
    """
    pairs = _header_pairs(headers)
    body = value or b""
    size = len(body) + sum(len(name) + len(raw) for name, raw in pairs)
    if size > max_bytes:
        what = "record" if len(body) == size else "record with its headers"
        raise Rejected(RejectReason.TOO_LARGE, f"{what} is {size} bytes, limit {max_bytes}")
    header_map = dict(pairs)
    limits = _Limits(max_depth, max_attribute_chars, max_items)
    binary = any(name.lower().startswith("ce_") for name in header_map)
    if binary:
        _precheck_binary(header_map)
    else:
        plain = _plain_structured(_precheck_structured(body))
        if plain is not None:
            return _to_event(plain, plain.get("data"), limits)
    try:
        cloud_event = ce_kafka.from_kafka(
            ce_kafka.KafkaMessage(headers=header_map, key=None, value=body), _FORMAT
        )
    except UnicodeDecodeError as exc:
        raise Rejected(RejectReason.INVALID_UTF8, str(exc)) from None
    except json.JSONDecodeError as exc:
        raise Rejected(RejectReason.BAD_JSON, f"data is not JSON: {exc}") from None
    except BaseCloudEventException as exc:
        raise _classify_validation(str(exc)) from None
    except RecursionError:
        raise _too_deep(None, max_depth) from None
    except (ValueError, TypeError, OverflowError) as exc:
        raise Rejected(RejectReason.BAD_TIME, f"time is not RFC 3339: {exc}") from None
    return _to_event(cloud_event.get_attributes(), cloud_event.get_data(), limits)


@dataclass(frozen=True)
class _Limits:
    depth: int
    attribute_chars: int
    items: int


def data_depth(value: Any) -> int:
    """How deeply objects and arrays nest in a JSON value (a scalar is 0, `{}` is 1)."""
    return data_shape(value)[0]


def data_shape(value: Any) -> tuple[int, int]:
    """(nesting depth, items of the largest array or object) of a JSON value."""
    deepest, largest = 0, 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Iterable[Any] = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth + 1)
        largest = max(largest, len(item))
        stack.extend((child, depth + 1) for child in children)
    return deepest, largest


def _too_deep(depth: int | None, limit: int) -> Rejected:
    found = f"nests {depth} levels" if depth is not None else "nests too deeply to parse"
    return Rejected(RejectReason.TOO_DEEP, f"data {found}, limit {limit} (setting max_data_depth)")


def _header_pairs(headers: Headers | None) -> list[tuple[str, bytes]]:
    if headers is None:
        return []
    items = headers.items() if isinstance(headers, Mapping) else headers
    return [(str(k), (v if isinstance(v, bytes) else bytes(v or b""))) for k, v in items]


def _precheck_binary(headers: Mapping[str, bytes]) -> None:
    """The SDK would invent a missing id or time; an event without them cannot be trusted."""
    lowered = {name.lower(): value for name, value in headers.items()}
    version = lowered.get("ce_specversion")
    if version != b"1.0":
        shown = version.decode("utf-8", "replace") if version else "missing"
        raise Rejected(
            RejectReason.BAD_SPECVERSION, f"ce_specversion {shown!r} is not supported, send '1.0'"
        )
    missing = [f"ce_{name}" for name in _REQUIRED if not lowered.get(f"ce_{name}")]
    if missing:
        raise Rejected(RejectReason.MISSING_FIELD, f"missing header {', '.join(missing)}")


def _precheck_structured(body: bytes) -> dict[str, Any]:
    """Give precise reasons the SDK would blur (not JSON, not an object, missing fields)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Rejected(RejectReason.INVALID_UTF8, str(exc)) from None
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        raise Rejected(RejectReason.BAD_JSON, str(exc)) from None
    except RecursionError:
        raise Rejected(RejectReason.TOO_DEEP, "JSON nests too deeply to parse") from None
    if not isinstance(parsed, dict):
        raise Rejected(RejectReason.NOT_AN_OBJECT, f"expected a JSON object, got {_kind(parsed)}")
    if parsed.get("specversion", "1.0") != "1.0":
        raise Rejected(
            RejectReason.BAD_SPECVERSION,
            f"specversion {parsed.get('specversion')!r} is not supported, send '1.0'",
        )
    missing = [name for name in _REQUIRED if name not in parsed or parsed[name] in (None, "")]
    if missing:
        raise Rejected(RejectReason.MISSING_FIELD, f"missing {', '.join(missing)}")
    for name in _REQUIRED:
        if name != "time" and not isinstance(parsed[name], str):
            raise Rejected(
                RejectReason.BAD_FIELD, f"{name} must be a string, got {_kind(parsed[name])}"
            )
    if not isinstance(parsed["time"], str):
        raise Rejected(RejectReason.BAD_TIME, f"time must be a string, got {_kind(parsed['time'])}")
    if "data" in parsed and not isinstance(parsed["data"], dict | None):
        raise Rejected(
            RejectReason.BAD_DATA, f"data must be a JSON object, got {_kind(parsed['data'])}"
        )
    return parsed


def _plain_structured(parsed: dict[str, Any]) -> dict[str, Any] | None:
    """The attributes of a prechecked structured event the SDK would pass through unchanged,
    with `time` parsed; None when the SDK must judge it (extensions, base64 data, another
    content type, an unusual time). Parsing the JSON once and skipping the SDK's generic
    validation halves the cost of decoding the common record."""
    if (
        not PLAIN_KEYS.issuperset(parsed)
        or parsed.get("specversion") != "1.0"
        or parsed.get("datacontenttype", "application/json") != "application/json"
        or not RFC3339.fullmatch(parsed["time"])
    ):
        return None
    try:
        moment = datetime.fromisoformat(parsed["time"])
    except ValueError:
        return None  # the SDK's parser gives the reason
    return {**parsed, "time": moment}


def _classify_validation(message: str) -> Rejected:
    missing = re.findall(r"Missing required attribute: '(\w+)'", message)
    if missing:
        return Rejected(RejectReason.MISSING_FIELD, f"missing {', '.join(missing)}")
    if "specversion" in message:
        return Rejected(RejectReason.BAD_SPECVERSION, "specversion must be '1.0'")
    detail = message.split("::", 1)[-1].strip()
    if re.search(r"\btime:", message):
        return Rejected(RejectReason.BAD_TIME, detail)
    return Rejected(RejectReason.BAD_FIELD, detail)


def _data_object(data: Any, max_depth: int) -> dict[str, Any]:
    """The event's `data` as a JSON object (parsed if it came as text); Rejected otherwise."""
    if isinstance(data, bytes | str):
        try:
            data = json.loads(data) if data else None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise Rejected(RejectReason.BAD_DATA, f"data is not JSON: {exc}") from None
        except RecursionError:
            raise _too_deep(None, max_depth) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise Rejected(RejectReason.BAD_DATA, f"data must be a JSON object, got {_kind(data)}")
    return data


def _to_event(attributes: Mapping[str, Any], data: Any, limits: _Limits) -> Event:
    data = _checked_data(attributes, data, limits)
    try:
        return Event(
            id=attributes["id"],
            source=attributes["source"],
            type=attributes["type"],
            time=attributes["time"],
            subject=attributes["subject"],
            data=data,
        )
    except OverflowError as exc:  # an offset that pushes year 1 or 9999 out of range
        raise Rejected(RejectReason.BAD_TIME, f"time: {exc}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        reason = RejectReason.BAD_TIME if field == "time" else RejectReason.BAD_FIELD
        raise Rejected(reason, f"{field}: {first['msg']}") from None


def _checked_data(attributes: Mapping[str, Any], data: Any, limits: _Limits) -> dict[str, Any]:
    """The event's `data` as an object, once the attributes and the data are within limits."""
    missing = [name for name in _REQUIRED if not attributes.get(name)]
    if missing:
        raise Rejected(RejectReason.MISSING_FIELD, f"missing {', '.join(missing)}")
    for name in ("id", "source", "type", "subject"):
        length = len(str(attributes[name]))
        if length > limits.attribute_chars:
            raise Rejected(
                RejectReason.TOO_LARGE,
                f"{name} is {length} characters, limit {limits.attribute_chars} "
                "(setting max_attribute_chars)",
            )
    max_depth = limits.depth
    data = _data_object(data, max_depth)
    depth, largest = data_shape(data)
    if depth > max_depth:
        raise _too_deep(depth, max_depth)
    if largest > limits.items:
        raise Rejected(
            RejectReason.TOO_LARGE,
            f"data holds an array or object of {largest} items, limit {limits.items} "
            "(setting max_data_items)",
        )
    return data  # type: ignore[no-any-return]  # _data_object made it an object


def check_time_range(
    event: Event | EventRef, now: datetime, max_age: timedelta, max_ahead: timedelta
) -> None:
    """Refuse an event time far from `now`: one record dated 9999 would otherwise move the
    watermark so far that every later event counts as late, and year 1 overflows time maths."""
    if event.time > now + max_ahead:
        raise Rejected(
            RejectReason.TIME_OUT_OF_RANGE,
            f"time {_rfc3339(event.time)} is more than {max_ahead} ahead of the worker's clock "
            "(setting max_future_s)",
        )
    if event.time < now - max_age:
        raise Rejected(
            RejectReason.TIME_OUT_OF_RANGE,
            f"time {_rfc3339(event.time)} is more than {max_age.days} days old "
            "(setting max_event_age_s)",
        )


def _kind(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(
        type(value), "a number" if isinstance(value, int | float) else "null"
    )


def encode(event: Event) -> bytes:
    """Structured-mode CloudEvents JSON for an event."""
    return json.dumps(to_structured_dict(event), separators=(",", ":")).encode()


def to_structured_dict(event: Event) -> dict[str, Any]:
    """The structured-mode JSON object for an event."""
    return {
        "specversion": "1.0",
        "id": event.id,
        "source": event.source,
        "type": event.type,
        "time": _rfc3339(event.time),
        "subject": event.subject,
        "datacontenttype": "application/json",
        "data": event.data,
    }


def encode_binary(event: Event) -> tuple[list[tuple[str, bytes]], bytes]:
    """Binary-mode record: `ce_*` headers and the `data` JSON as the value."""
    headers = [
        ("ce_specversion", b"1.0"),
        ("ce_id", event.id.encode()),
        ("ce_source", event.source.encode()),
        ("ce_type", event.type.encode()),
        ("ce_time", _rfc3339(event.time).encode()),
        ("ce_subject", event.subject.encode()),
        ("content-type", b"application/json"),
    ]
    return headers, json.dumps(event.data, separators=(",", ":")).encode()


def _rfc3339(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
