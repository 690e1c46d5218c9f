"""Worker settings from the environment (`CXMON_*`) and an optional YAML file (`CXMON_CONFIG`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from ruamel.yaml import YAML


class Settings(BaseSettings):
    """Everything a worker needs to know; env vars are `CXMON_<FIELD>` in upper case."""

    model_config = SettingsConfigDict(env_prefix="CXMON_", extra="forbid")

    bootstrap_servers: str = Field(default="127.0.0.1:9092", description="host:port[,host:port]")
    app_id: str = Field(
        default="cxmon", description="consumer group; workers sharing it share work"
    )
    topic_events: str = "cx.events"
    topic_keyed: str = Field(default="cx.events.keyed", description="internal, keyed by rule key")
    topic_alerts: str = "cx.alerts"
    topic_dlq: str = "cx.events.dlq"
    topic_partitions: int = Field(default=8, ge=1)
    topic_replication: int = Field(default=1, ge=1)
    rules_path: Path = Path("rules")
    store: str = Field(default="memory://", description="memory:// or rocksdb://")
    data_dir: Path = Path(".cxmon/data")
    lateness_s: float = Field(default=300.0, ge=0, description="accepted out-of-order delay")
    reload_interval_s: float = Field(
        default=5.0,
        ge=0,
        description="how often rule files are checked for changes (0: only SIGHUP)",
    )
    sweep_interval_s: float = Field(
        default=1.0, gt=0, description="how often deadlines are checked"
    )
    max_event_bytes: int = Field(default=256 * 1024, gt=0)
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=9464, ge=0, le=65535)
    console_alerts: bool = True
    ready_file: Path | None = Field(default=None, description="touched once the worker is ready")
    # Group membership: the defaults suit a production cluster; the embedded broker in
    # `make demo` and the tests uses the fast profile (see README, "Start-up time").
    profile: Literal["production", "fast-start"] = "production"
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Precedence: arguments, environment, then the YAML file named by `CXMON_CONFIG`."""
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config = os.environ.get("CXMON_CONFIG")
        if config:
            data = YAML(typ="safe").load(Path(config).read_text(encoding="utf-8")) or {}
            sources.append(InitSettingsSource(settings_cls, init_kwargs=dict(data)))
        return tuple(sources)

    def group_timeouts(self) -> dict[str, Any]:
        """Consumer-group timings for the chosen profile (seconds).

        The embedded broker completes a group join only after half the session timeout of the
        group's first member, so `fast-start` keeps that short; a real Kafka cluster rejects
        session timeouts under 6 s, and short ones evict busy workers, so `production` keeps
        Faust's defaults.
        """
        if self.profile == "fast-start":
            return {
                "rebalance_timeout": 1.0,
                "session_timeout": 3.0,
                "heartbeat_interval": 0.5,
                # The embedded broker reports a wrong end offset after a batched produce, and
                # table recovery trusts it: one record per batch keeps changelogs consistent.
                "producer_max_batch_size": 1,
                # Faust 0.15 does not commit on revoke; commit often so a takeover replays little.
                "commit_interval": 0.2,
            }
        return {
            "rebalance_timeout": 60.0,
            "session_timeout": 60.0,
            "heartbeat_interval": 3.0,
        }
