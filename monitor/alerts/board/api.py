"""The board's HTTP side, a WSGI app: the page at `/`, `/api/v1/conflicts`, `/api/v1/silences`.

Reads are open to whoever reaches the port (127.0.0.1 by default). Writes (create or expire a
silence) need `Authorization: Bearer <CXMON_BOARD_TOKEN>`, compared in constant time; without a
token configured the board is read-only. Writes go through `SilenceWriter`, which the notifier
implements on its Kafka producer (the same compacted topic as `cxmon silence`). Called from the
HTTP server's threads.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import resources
from typing import Any, Protocol
from urllib.parse import parse_qs

from monitor.alerts.board.state import BoardState, Filters, silence_documents
from monitor.alerts.silences import Silence, SilenceBook, new_silence
from monitor.config.durations import parse_duration
from monitor.events.envelope import utcnow

StartResponse = Callable[..., Any]
MAX_BODY = 64 * 1024
DEFAULT_LIMIT, MAX_LIMIT = 500, 5000  # conflicts per list in one answer
MAX_SILENCE = timedelta(days=366)
_SILENCE_PATH = re.compile(r"^/api/v1/silences/([A-Za-z0-9_-]{1,64})$")
PAGE = resources.files("monitor.alerts.board").joinpath("page.html").read_text(encoding="utf-8")


class SilenceWriter(Protocol):
    """Puts a silence on the silences topic and into the notifier's book; raises on failure."""

    def __call__(self, silence: Silence) -> None: ...


class Unavailable(Exception):
    """The notifier cannot write yet (still starting); the client may try again."""


@dataclass
class BoardApp:
    """The board's routes; `writer` and `caught_up` are set once the notifier has started."""

    state: BoardState
    silences: SilenceBook
    token: str | None = None
    writer: SilenceWriter | None = None
    caught_up: Callable[[], bool] = lambda: False
    now: Callable[[], datetime] = utcnow
    on_write: Callable[[str, str], None] | None = None  # (action, outcome), for metrics
    hosts: frozenset[str] = frozenset()  # host names the board answers to besides IPs

    def host_allowed(self, host: str) -> bool:
        """An IP address, `localhost`, or a name listed in `hosts` (a port is ignored)."""
        if host.startswith("[") and "]" in host:  # [IPv6]:port
            name = host[1 : host.index("]")]
        else:
            name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
        name = name.lower()
        if not name or name == "localhost" or name in self.hosts:
            return True
        try:
            ipaddress.ip_address(name)
        except ValueError:
            return False
        return True

    def handles(self, path: str) -> bool:
        """Whether a path belongs to the board."""
        return path == "/" or path.startswith("/api/v1/")

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """Route one request."""
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        if not self.host_allowed(environ.get("HTTP_HOST", "")):
            # A web page on another site that rebinds its DNS name to 127.0.0.1 would
            # otherwise read the board (customer keys) from a browser on this machine.
            return _error(
                start_response,
                "421 Misdirected Request",
                "this host name is not allowed: add it to CXMON_BOARD_HOSTS",
            )
        if path == "/":
            return self._page(start_response) if method == "GET" else _method(start_response)
        if path == "/api/v1/conflicts":
            if method != "GET":
                return _method(start_response)
            return self._conflicts(environ, start_response)
        if path == "/api/v1/silences":
            if method == "GET":
                return self._json(start_response, "200 OK", self._silences())
            if method == "POST":
                return self._write(environ, start_response, "create", self._create)
            return _method(start_response)
        if found := _SILENCE_PATH.match(path):
            if method != "DELETE":
                return _method(start_response)
            silence_id = found.group(1)
            return self._write(
                environ, start_response, "expire", lambda _: self._expire(silence_id)
            )
        return _error(start_response, "404 Not Found", "no such path")

    def _page(self, start_response: StartResponse) -> list[bytes]:
        nonce = secrets.token_urlsafe(16)
        body = PAGE.replace("{{nonce}}", nonce).encode()
        csp = (
            f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
            "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
            "frame-ancestors 'none'"
        )
        start_response(
            "200 OK",
            [
                ("Content-Type", "text/html; charset=utf-8"),
                ("Content-Length", str(len(body))),
                ("Cache-Control", "no-store"),
                ("Content-Security-Policy", csp),
                ("X-Content-Type-Options", "nosniff"),
                ("Referrer-Policy", "no-referrer"),
            ],
        )
        return [body]

    def _conflicts(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        query = parse_qs(environ.get("QUERY_STRING", ""))
        filters = Filters.from_query(query)
        try:
            limit = min(max(int(query.get("limit", [DEFAULT_LIMIT])[0]), 1), MAX_LIMIT)
        except ValueError:
            return _error(start_response, "400 Bad Request", "`limit` must be a number")
        now = self.now()
        self.state.expire(now)
        book = dict(self.silences.silences)  # a copy: the notifier's loop updates it
        caught_up = self.caught_up()
        signature = "|".join(
            [
                str(self.state.version),
                str(caught_up),
                filters.key(),
                str(limit),
                *sorted(f"{s.id}:{s.ends_at.isoformat()}" for s in book.values()),
                *sorted(s.id for s in book.values() if s.active(now)),
            ]
        )
        etag = '"' + hashlib.sha256(signature.encode()).hexdigest()[:32] + '"'
        if environ.get("HTTP_IF_NONE_MATCH") == etag:
            start_response("304 Not Modified", [("ETag", etag), ("Cache-Control", "no-cache")])
            return []
        view = self.state.view(filters, book.values(), now, limit)
        document = {**view, "caught_up": caught_up, "now": now}
        return self._json(start_response, "200 OK", document, etag=etag)

    def _silences(self) -> dict[str, Any]:
        return {
            "writable": bool(self.token),
            "silences": silence_documents(self.silences, self.now()),
        }

    def _write(
        self,
        environ: dict[str, Any],
        start_response: StartResponse,
        action: str,
        run: Callable[[dict[str, Any]], tuple[str, dict[str, Any]]],
    ) -> list[bytes]:
        outcome, status, document = self._attempt(environ, run)
        if self.on_write is not None:
            self.on_write(action, outcome)
        if outcome != "success":
            return _error(start_response, status, document["error"])
        return self._json(start_response, status, document)

    def _attempt(
        self, environ: dict[str, Any], run: Callable[[dict[str, Any]], tuple[str, dict[str, Any]]]
    ) -> tuple[str, str, dict[str, Any]]:
        """(outcome, HTTP status, document) of one write."""
        if not self.token:
            message = "read-only: set CXMON_BOARD_TOKEN to allow writes"
            return "forbidden", "403 Forbidden", {"error": message}
        given = environ.get("HTTP_AUTHORIZATION", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            message = "a valid bearer token is required"
            return "unauthorized", "401 Unauthorized", {"error": message}
        try:
            status, document = run(_read_json(environ))
        except ValueError as exc:
            return "invalid", "400 Bad Request", {"error": str(exc)}
        except LookupError as exc:
            return "invalid", "404 Not Found", {"error": str(exc)}
        except Unavailable as exc:
            return "unavailable", "503 Service Unavailable", {"error": str(exc)}
        return "success", status, document

    def _create(self, body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        matchers = body.get("matchers")
        if not isinstance(matchers, list) or not matchers:
            raise ValueError(
                "`matchers` must be a non-empty list like ['rule=x', 'owners=billing']"
            )
        if not all(isinstance(m, str) and m.strip() for m in matchers):
            raise ValueError("every matcher must be a string like 'rule=x'")
        duration = parse_duration(str(body.get("duration", "")))
        if not timedelta(0) < duration <= MAX_SILENCE:
            raise ValueError("`duration` must be more than 0 and at most 366d")
        author, comment = str(body.get("created_by", "")), str(body.get("comment", ""))
        if not author.strip() or not comment.strip():
            raise ValueError("a silence needs `created_by` and a `comment` saying why")
        silence = new_silence(
            [m.strip() for m in matchers],
            duration,
            self.now(),
            created_by=author.strip()[:200],
            comment=comment.strip()[:1000],
        )
        self._writer()(silence)
        return "201 Created", {**silence.model_dump(mode="json"), "active": True}

    def _expire(self, silence_id: str) -> tuple[str, dict[str, Any]]:
        silence = self.silences.silences.get(silence_id)
        if silence is None:
            raise LookupError(f"no silence {silence_id}")
        expired = silence.expired(self.now())
        self._writer()(expired)
        return "200 OK", {**expired.model_dump(mode="json"), "active": False}

    def _writer(self) -> SilenceWriter:
        if self.writer is None:
            raise Unavailable("the notifier is still starting; try again in a few seconds")
        return self.writer

    def _json(
        self, start_response: StartResponse, status: str, document: Any, etag: str | None = None
    ) -> list[bytes]:
        body = json.dumps(document, default=_encode, separators=(",", ":")).encode()
        headers = [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-cache"),
            ("X-Content-Type-Options", "nosniff"),
        ]
        if etag:
            headers.append(("ETag", etag))
        start_response(status, headers)
        return [body]


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    raise TypeError(f"cannot encode {type(value).__name__}")


def _read_json(environ: dict[str, Any]) -> dict[str, Any]:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise ValueError("bad Content-Length") from None
    if length > MAX_BODY:
        raise ValueError(f"the body is larger than {MAX_BODY} bytes")
    raw = environ["wsgi.input"].read(length) if length else b""
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"the body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    return body


def _error(start_response: StartResponse, status: str, message: str) -> list[bytes]:
    body = json.dumps({"error": message}).encode()
    start_response(
        status,
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
        ],
    )
    return [body]


def _method(start_response: StartResponse) -> list[bytes]:
    return _error(start_response, "405 Method Not Allowed", "method not allowed on this path")
