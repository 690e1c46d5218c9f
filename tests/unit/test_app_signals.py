"""The app's lifecycle signals: `on_rebalance_started` when a rebalance starts, `on_ready` right
before the ready file is written; each app has its own receivers."""

from __future__ import annotations

import gc
import json
from pathlib import Path

from streams.app import CxApp, receiver


def new(name: str, ready_file: Path | None = None) -> CxApp:
    app = CxApp(name, broker="kafka://127.0.0.1:1", web_enabled=False)
    app.ready_file = str(ready_file) if ready_file else None
    return app


def test_on_ready_is_sent_before_the_ready_file_is_written(tmp_path: Path) -> None:
    ready_file = tmp_path / "worker.ready"
    app = new("cx-signals-ready", ready_file)
    seen: list[bool] = []
    app.on_ready.connect(receiver(lambda: seen.append(ready_file.exists())))
    app.on_rebalance_start()
    app.on_rebalance_end()
    assert seen == [False]  # called once, while the file did not exist yet
    assert json.loads(ready_file.read_text())["actives"] == []


def test_on_rebalance_started_is_sent_when_faust_starts_a_rebalance() -> None:
    app = new("cx-signals-rebalance")
    calls: list[str] = []
    app.on_rebalance_started.connect(receiver(lambda: calls.append("rebalancing")))
    app.on_ready.connect(receiver(lambda: calls.append("ready")))
    app.on_rebalance_start()
    assert calls == ["rebalancing"]
    app.on_rebalance_end()
    assert calls == ["rebalancing", "ready"]


def test_receivers_belong_to_their_app_and_are_kept_alive() -> None:
    first, second = new("cx-signals-a"), new("cx-signals-b")
    calls: list[str] = []
    first.on_ready.connect(receiver(lambda: calls.append("first")))
    gc.collect()  # a receiver held only by the signal must not be collected
    second.on_rebalance_start()
    second.on_rebalance_end()
    assert calls == []
    first.on_rebalance_start()
    first.on_rebalance_end()
    assert calls == ["first"]
