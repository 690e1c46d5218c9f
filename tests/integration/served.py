"""A Prometheus-family server for tests (Prometheus, Alertmanager): started in its own process
group on a loopback port with its own log, awaited on `/-/ready`, stopped even on failure."""

from __future__ import annotations

import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, TypeVar

from tests.integration.stopping import stop_group


@dataclass
class Served:
    """A running server: its process, port and log."""

    name: ClassVar[str] = "server"  # in failure messages

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        """Its base URL."""
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        """What the server printed so far."""
        return self.log_path.read_text(errors="replace")[-5000:]

    def stop(self) -> None:
        """Stop its process group; SIGKILL if it does not exit in time."""
        stop_group(self.process, timeout_s=10)

    def wait_ready(self, timeout_s: float = 20.0) -> None:
        """Until `/-/ready` answers 200; fails with the log if it exits or the time runs out."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as response:  # noqa: S310
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"{self.name} not ready after {timeout_s}s:\n{self.log()}")


S = TypeVar("S", bound=Served)


@contextmanager
def serving(kind: type[S], argv: list[str], port: int, log_path: Path) -> Iterator[S]:
    """Run `argv` (which listens on `port`) as a `kind`, ready, until the block ends."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = kind(process, port, log_path)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()
