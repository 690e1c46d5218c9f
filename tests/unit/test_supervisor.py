"""How many workers `cxmon run` starts, and what each one gets."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.settings import Settings
from streams import supervisor
from streams.supervisor import child_env, process_count


def test_default_is_one_per_core_capped_by_partitions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(supervisor, "available_cores", lambda: 16)
    assert process_count(0, partitions=8) == 8
    assert process_count(0, partitions=32) == 16
    assert process_count(3, partitions=32) == 3
    assert process_count(5, partitions=2) == 2


def test_each_worker_gets_its_own_port_data_dir_and_ready_file(tmp_path: Path) -> None:
    settings = Settings(
        metrics_port=9500, data_dir=tmp_path / "data", ready_file=tmp_path / "ready"
    )
    envs = [child_env(settings, i) for i in range(3)]
    assert [e["CXMON_METRICS_PORT"] for e in envs] == ["9500", "9501", "9502"]
    assert len({e["CXMON_DATA_DIR"] for e in envs}) == 3
    assert [e["CXMON_READY_FILE"] for e in envs] == [f"{tmp_path / 'ready'}.{i}" for i in range(3)]
    assert {e["CXMON_PROCESSES"] for e in envs} == {"1"}


def test_an_ephemeral_port_stays_ephemeral(tmp_path: Path) -> None:
    settings = Settings(metrics_port=0, data_dir=tmp_path)
    assert child_env(settings, 1)["CXMON_METRICS_PORT"] == "0"
