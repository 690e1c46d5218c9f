"""`make demo`: an embedded broker, a worker, the notifier and the simulator; Ctrl-C (or SIGTERM)
stops them all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from streams.broker import EmbeddedBroker

WORK = Path(".cxmon/demo")


def _spawn(
    args: list[str],
    env: dict[str, str],
    children: list[subprocess.Popen[bytes]],
    output: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start a process in its own session and record it in `children` at once, so a stop that
    comes before the caller has it in hand still stops it."""
    if output is None:
        child = subprocess.Popen(args, env=env, start_new_session=True)  # noqa: S603
    else:
        with output.open("wb") as log:
            child = subprocess.Popen(  # noqa: S603
                args, env=env, start_new_session=True, stdout=log, stderr=subprocess.STDOUT
            )
    children.append(child)
    return child


def _stop(process: subprocess.Popen[bytes] | None, timeout_s: float = 10.0) -> None:
    if process is None or process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def run_demo(
    rules: Path,
    metrics_port: int,
    rate: float,
    sources: Path = Path("sources"),
    alerting: Path | None = None,
    simulate: bool = True,
) -> int:
    """Run everything until Ctrl-C or SIGTERM; return an exit code. `alerting`: the notifier's
    file (default: CXMON_ALERTING_PATH); without `simulate`, only the events the user publishes."""
    # SIGTERM (a `kill`, a CI timeout) stops the processes the demo started, as Ctrl-C does;
    # SIGINT too when a shell started the demo in the background with SIGINT ignored.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    WORK.mkdir(parents=True, exist_ok=True)
    ready = WORK / "worker.ready"
    ready.unlink(missing_ok=True)
    children: list[subprocess.Popen[bytes]] = []
    notifications = WORK / "notifications.log"
    print("demo: starting the embedded Kafka-compatible broker ...", flush=True)
    with EmbeddedBroker(log_path=WORK / "broker.log") as broker:
        env = {
            **os.environ,
            "CXMON_BOOTSTRAP_SERVERS": broker.bootstrap,
            "CXMON_PROFILE": "fast-start",
            "CXMON_RULES_PATH": str(rules),
            "CXMON_SOURCES_PATH": str(sources.resolve()),
            "CXMON_METRICS_PORT": str(metrics_port),
            "CXMON_PROCESSES": "1",  # the notifier takes the next port
            "CXMON_READY_FILE": str(ready),
            "CXMON_DATA_DIR": str(WORK / "data"),
            "CXMON_LOG_LEVEL": "warning",
            "CXMON_NOTIFIER_METRICS_PORT": str(metrics_port + 1),
            **({"CXMON_ALERTING_PATH": str(alerting.resolve())} if alerting else {}),
        }
        cxmon = [sys.executable, "-m", "cli.main"]
        try:
            started = time.monotonic()
            print(f"demo: broker on {broker.bootstrap}; starting a worker ...", flush=True)
            worker = _spawn([*cxmon, "run"], env, children)
            while not ready.exists():
                if worker.poll() is not None:
                    print("demo: the worker exited; see the messages above", flush=True)
                    return 1
                if time.monotonic() - started > 60:
                    print("demo: the worker did not become ready within 60 s", flush=True)
                    return 1
                time.sleep(0.1)
            print(
                f"demo: worker ready in {time.monotonic() - started:.1f}s; "
                f"metrics on http://127.0.0.1:{metrics_port}/metrics",
                flush=True,
            )
            if simulate:
                print(
                    "demo: simulating four days of history, then live traffic. Ctrl-C stops.\n",
                    flush=True,
                )
            else:
                print(
                    "demo: no simulated traffic; send your own events from another shell with\n"
                    f"  CXMON_BOOTSTRAP_SERVERS={broker.bootstrap} cxmon publish my-events.jsonl\n"
                    "Ctrl-C stops.\n",
                    flush=True,
                )
            # The notifier routes the same alerts as teams would get them (alerting.yaml; with no
            # channel secrets exported, everything goes to its console receiver).
            _spawn([*cxmon, "notify"], env, children, output=notifications)
            print(
                f"demo: notifier running; what teams would receive is in {notifications}, "
                f"its metrics on http://127.0.0.1:{metrics_port + 1}/metrics\n"
                f"demo: conflict board on http://127.0.0.1:{metrics_port + 1}/",
                flush=True,
            )
            # Billing's charges and refunds come as the payment platform's webhooks, as they
            # would without changing its system; sources/payments.yaml maps them (docs/sources.md).
            if simulate:
                command = [*cxmon, "simulate", "--rate", str(rate), "--raw", "billing"]
                _spawn(command, env, children)
            while worker.poll() is None:
                time.sleep(0.2)
            return worker.returncode or 0
        except KeyboardInterrupt:
            print("\ndemo: stopping ...", flush=True)
            return 0
        finally:
            # A second Ctrl-C (or a TERM that make forwards twice) must not cut this short: it
            # would leave the worker running against a broker that is about to stop.
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            for child in reversed(children):  # the simulator first, the worker last
                _stop(child)
