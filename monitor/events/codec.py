"""Bytes on the wire <-> `Event`, via the CloudEvents SDK (structured JSON and binary mode)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.exceptions import BaseCloudEventException
from cloudevents.core.formats.json import JSONFormat
from pydantic import ValidationError

from monitor.events.envelope import Event
from monitor.events.rejects import Rejected, RejectReason

DEFAULT_MAX_EVENT_BYTES = 256 * 1024
_FORMAT = JSONFormat()
_REQUIRED = ("id", "source", "type", "time", "subject")

Headers = Mapping[str, bytes] | Iterable[tuple[str, bytes]]


def decode(
    value: bytes | None,
    headers: Headers | None = None,
    *,
    max_bytes: int = DEFAULT_MAX_EVENT_BYTES,
) -> Event:
    """Parse one Kafka record into an `Event`, or raise `Rejected` with the reason."""
    header_map = _header_map(headers)
    body = value or b""
    if len(body) > max_bytes:
        raise Rejected(RejectReason.TOO_LARGE, f"record is {len(body)} bytes, limit {max_bytes}")
    binary = any(name.lower().startswith("ce_") for name in header_map)
    if binary:
        _precheck_binary(header_map)
    else:
        _precheck_structured(body)
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
    except (ValueError, TypeError, OverflowError) as exc:
        raise Rejected(RejectReason.BAD_TIME, f"time is not RFC 3339: {exc}") from None
    return _to_event(cloud_event.get_attributes(), cloud_event.get_data())


def _header_map(headers: Headers | None) -> dict[str, bytes]:
    if headers is None:
        return {}
    items = headers.items() if isinstance(headers, Mapping) else headers
    return {str(k): (v if isinstance(v, bytes) else bytes(v or b"")) for k, v in items}


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


def _precheck_structured(body: bytes) -> None:
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
        raise Rejected(RejectReason.BAD_JSON, "JSON nested too deeply") from None
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


def _to_event(attributes: Mapping[str, Any], data: Any) -> Event:
    missing = [name for name in _REQUIRED if not attributes.get(name)]
    if missing:
        raise Rejected(RejectReason.MISSING_FIELD, f"missing {', '.join(missing)}")
    if isinstance(data, bytes | str):
        try:
            data = json.loads(data) if data else None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise Rejected(RejectReason.BAD_DATA, f"data is not JSON: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise Rejected(RejectReason.BAD_DATA, f"data must be a JSON object, got {_kind(data)}")
    try:
        return Event(
            id=attributes["id"],
            source=attributes["source"],
            type=attributes["type"],
            time=attributes["time"],
            subject=attributes["subject"],
            data=data,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        reason = RejectReason.BAD_TIME if field == "time" else RejectReason.BAD_FIELD
        raise Rejected(reason, f"{field}: {first['msg']}") from None


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
