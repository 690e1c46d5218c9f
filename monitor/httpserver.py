"""The small HTTP server each cxmon process runs: `/metrics`, `/healthz` and `/readyz`.

- `/metrics`: the Prometheus exposition of the process's registry (prometheus_client's WSGI app,
  so `Accept`-negotiated OpenMetrics, gzip and `name[]` filters work as usual).
- `/healthz`: 200 while the process serves requests at all (liveness).
- `/readyz`: 200 once the process says it is ready, 503 with the reason until then (readiness).

Anything else is a 404. The server runs in daemon threads beside the process's own work, so a
busy event loop does not delay a probe, and it knows nothing of Kafka: the process flips its
`Health` when it becomes ready or stops being ready.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any, Protocol
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

PATHS = ("/metrics", "/healthz", "/readyz")


class Health:
    """Readiness as the process reports it; safe to flip from any thread."""

    def __init__(self, not_ready_reason: str = "starting") -> None:
        self._lock = threading.Lock()
        self._ready = False
        self._reason = not_ready_reason

    @property
    def ready(self) -> bool:
        """True once `set_ready` was called and not undone since."""
        with self._lock:
            return self._ready

    @property
    def reason(self) -> str:
        """Why the process is not ready (empty when it is)."""
        with self._lock:
            return "" if self._ready else self._reason

    def set_ready(self) -> None:
        """The process does its job now."""
        with self._lock:
            self._ready = True

    def set_not_ready(self, reason: str) -> None:
        """The process cannot do its job right now, e.g. while its group rebalances."""
        with self._lock:
            self._ready = False
            self._reason = reason


class Mounted(Protocol):
    """Another WSGI app served beside the three paths (the notifier's conflict board)."""

    def handles(self, path: str) -> bool:
        """Whether the path is this app's."""
        ...

    def __call__(
        self, environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]: ...


def make_app(registry: CollectorRegistry, health: Health, extra: Mounted | None = None) -> WsgiApp:
    """The WSGI app behind the three paths (and `extra`'s)."""
    metrics_app = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if extra is not None and extra.handles(path):
            return extra(environ, start_response)
        if path == "/metrics":
            result: Iterable[bytes] = metrics_app(environ, start_response)
            return result
        if path == "/healthz":
            return _text(start_response, "200 OK", "ok\n")
        if path == "/readyz":
            if health.ready:
                return _text(start_response, "200 OK", "ready\n")
            return _text(start_response, "503 Service Unavailable", f"not ready: {health.reason}\n")
        return _text(start_response, "404 Not Found", f"not found; try {', '.join(PATHS)}\n")

    return app


def _text(start_response: StartResponse, status: str, body: str) -> list[bytes]:
    data = body.encode()
    start_response(
        status,
        [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(data))),
            ("Cache-Control", "no-store"),
        ],
    )
    return [data]


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # stdlib's name
        """Probes and scrapes every few seconds would drown the worker's log."""


class RunningServer:
    """A started server: where it listens, and how to stop it."""

    def __init__(self, server: WSGIServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread
        address = server.server_address
        self.host: str = str(address[0])
        self.port: int = int(address[1])

    def close(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def serve(
    host: str,
    port: int,
    registry: CollectorRegistry,
    health: Health,
    extra: Mounted | None = None,
) -> RunningServer:
    """Listen on host:port (port 0: any free port) in a daemon thread; returns at once."""
    family, _, _, _, _ = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM)[0]

    class Server(_ThreadingWSGIServer):
        address_family = family

    server = make_server(
        host,
        port,
        make_app(registry, health, extra),
        server_class=Server,
        handler_class=_QuietHandler,
    )
    thread = threading.Thread(target=server.serve_forever, name="cxmon-http", daemon=True)
    thread.start()
    return RunningServer(server, thread)
