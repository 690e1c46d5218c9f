"""Worker settings from the environment (`CXMON_*`) and an optional YAML file (`CXMON_CONFIG`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, FilePath, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from monitor.settings_file import load_settings_file

if TYPE_CHECKING:
    from monitor.rules.limits import RuleLimits


class Settings(BaseSettings):
    """Everything a worker needs to know; env vars are `CXMON_<FIELD>` in upper case."""

    # Errors never echo inputs: one of them may be a password.
    model_config = SettingsConfigDict(
        env_prefix="CXMON_", extra="forbid", hide_input_in_errors=True, env_ignore_empty=True
    )

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
    sources_path: Path = Field(
        default=Path("sources"), description="source mappings: raw topics read as events"
    )
    store: str = Field(default="memory://", description="memory:// or rocksdb://")
    data_dir: Path = Path(".cxmon/data")
    lateness_s: float = Field(default=300.0, ge=0, description="accepted out-of-order delay")
    live_horizon_s: float = Field(
        default=900.0,
        gt=0,
        description="conflicts older than this when detected (backfills, replays) count as "
        "history, not in the detection latency histogram",
    )
    reload_interval_s: float = Field(
        default=5.0,
        ge=0,
        description="how often rule files are checked for changes (0: only SIGHUP)",
    )
    sweep_interval_s: float = Field(
        default=1.0, gt=0, description="how often deadlines are checked"
    )
    processes: int = Field(
        default=0,
        ge=0,
        description="worker processes `cxmon run` starts (0: one per core, at most the partitions)",
    )
    standby_replicas: int = Field(
        default=1,
        ge=0,
        description="standby copies of each state partition other workers keep (Faust's "
        "table_standby_replicas): faster takeovers, for the CPU of replaying the changelog",
    )
    batch_delivery: bool = Field(
        default=True,
        description="hand each fetched batch to the agents under one wait (false: Faust's own "
        "per-record hand-off)",
    )
    producer_linger_ms: float = Field(
        default=0.0,
        ge=0,
        description="how long a worker holds alerts and changelog batches to gather more into "
        "one produce request (0: sent at once; a batch's states go out together regardless)",
    )
    max_event_bytes: int = Field(
        default=256 * 1024, gt=0, description="larger records are rejected as too_large"
    )
    # Hardening limits (docs/security.md says what each one bounds).
    max_data_depth: int = Field(
        default=32, ge=1, description="deeper `data` nesting is rejected as too_deep"
    )
    max_attribute_chars: int = Field(
        default=256,
        ge=16,
        description="longer id, source, type or subject attributes are rejected as too_large",
    )
    max_data_items: int = Field(
        default=1000,
        ge=1,
        description="arrays or objects in `data` with more items are rejected as too_large",
    )
    max_future_s: float = Field(
        default=3600.0, ge=0, description="event times further ahead of the clock are rejected"
    )
    max_event_age_s: float = Field(
        default=366 * 86400.0, gt=0, description="older event times are rejected"
    )
    max_state_entries: int = Field(
        default=5000,
        ge=10,
        description="per rule and customer: remembered events/ids beyond it evict the oldest",
    )
    max_state_bytes: int = Field(
        default=512 * 1024,
        ge=4096,
        description="per rule and customer: a state (one changelog record) larger than this "
        "drops its oldest entries",
    )
    max_event_series: int = Field(
        default=1000,
        ge=1,
        description="department/event type pairs counted under their own names in metrics, "
        "beyond the rules' own; later ones count as type 'other'",
    )
    max_rules: int = Field(default=1000, ge=1, description="more rules refuse to load")
    max_rule_file_bytes: int = Field(
        default=1024 * 1024, ge=1, description="larger rule files refuse to load"
    )
    max_cel_cost: int = Field(
        default=100_000,
        ge=1,
        description="static bound on the values one CEL evaluation may visit or copy",
    )
    template_max_chars: int = Field(
        default=2000, ge=80, description="longer alert messages are cut"
    )
    template_max_range: int = Field(default=1000, ge=1, description="largest range() in messages")
    template_budget: int = Field(
        default=100_000, ge=100, description="operations one message render may use"
    )
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=9464, ge=0, le=65535)
    console_alerts: bool = True
    # The notifier (`cxmon notify`).
    alerting_path: Path = Field(default=Path("alerting.yaml"), description="receivers and routes")
    topic_alerts_dlq: str = "cx.alerts.dlq"
    topic_silences: str = Field(default="cx.silences", description="compacted: silences by id")
    topic_notified: str = Field(
        default="cx.alerts.notified", description="compacted: (fingerprint, status) delivered"
    )
    notifier_metrics_port: int = Field(default=9465, ge=0, le=65535)
    notifier_ready_file: Path | None = None
    notify_retry_initial_s: float = Field(default=1.0, gt=0, description="first retry delay")
    notify_retry_max_s: float = Field(default=60.0, gt=0, description="longest retry delay")
    notify_max_age_s: float = Field(
        default=3600.0, gt=0, description="give up (dead-letter) this long after the first try"
    )
    board_token: SecretStr | None = Field(
        default=None, description="bearer token that lets the conflict board write silences"
    )
    board_hosts: str = Field(
        default="",
        description="host names (comma-separated) the board answers to, besides IP addresses "
        "and localhost",
    )
    board_expire_s: float = Field(
        default=7 * 86400.0, gt=0, description="the board closes conflicts open this long"
    )
    board_keep_resolved_s: float = Field(
        default=86400.0, gt=0, description="how long the board lists resolved conflicts"
    )
    stop_timeout_s: float = Field(
        default=25.0,
        gt=0,
        description="after SIGTERM, a worker or notifier that has not stopped by then exits "
        "(keep it under the platform's grace period, 30 s on Kubernetes)",
    )
    ready_file: Path | None = Field(default=None, description="touched once the worker is ready")
    # Group membership: the defaults suit a production cluster; the embedded broker in
    # `make demo` and the tests uses the fast profile (see README, "Start-up time").
    profile: Literal["production", "fast-start"] = "production"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # Kafka security (README, "Connect to a secured Kafka"): one set for every Kafka client.
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT", description="how clients talk to the brokers"
    )
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        default="PLAIN", description="SASL mechanism (with SASL_SSL or SASL_PLAINTEXT)"
    )
    sasl_username: str | None = None
    sasl_password: SecretStr | None = Field(default=None, description="never printed")
    sasl_password_file: FilePath | None = Field(
        default=None, description="file holding the SASL password (a mounted secret)"
    )
    ssl_cafile: FilePath | None = Field(
        default=None, description="CA bundle (PEM) to verify brokers; default: system CAs"
    )
    ssl_certfile: FilePath | None = Field(default=None, description="client certificate (PEM)")
    ssl_keyfile: FilePath | None = Field(default=None, description="client private key (PEM)")
    ssl_check_hostname: bool = Field(
        default=True, description="check that broker certificates name the broker host"
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,  # noqa: ARG003 - pydantic-settings passes every source
        file_secret_settings: PydanticBaseSettingsSource,  # noqa: ARG003
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Precedence: arguments, environment, then the YAML file named by `CXMON_CONFIG`."""
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config = os.environ.get("CXMON_CONFIG")
        if config:
            data = load_settings_file(Path(config)).values
            sources.append(InitSettingsSource(settings_cls, init_kwargs=data))
        return tuple(sources)

    @model_validator(mode="after")
    def _check_kafka_security(self) -> Settings:
        """Read the password file; refuse combinations that would silently not authenticate."""
        if self.sasl_password_file is not None:
            if self.sasl_password is not None:
                raise ValueError("set CXMON_SASL_PASSWORD or CXMON_SASL_PASSWORD_FILE, not both")
            text = self.sasl_password_file.read_text(encoding="utf-8").rstrip("\r\n")
            self.sasl_password = SecretStr(text)
        sasl = self.security_protocol.startswith("SASL_")
        tls = self.security_protocol.endswith("SSL")
        if sasl and (not self.sasl_username or self.sasl_password is None):
            raise ValueError(
                f"security_protocol {self.security_protocol} needs CXMON_SASL_USERNAME and "
                "CXMON_SASL_PASSWORD (or CXMON_SASL_PASSWORD_FILE)"
            )
        if not sasl and (self.sasl_username or self.sasl_password is not None):
            raise ValueError(
                "SASL credentials are set but security_protocol is "
                f"{self.security_protocol}: set CXMON_SECURITY_PROTOCOL=SASL_SSL"
            )
        tls_files = [self.ssl_cafile, self.ssl_certfile, self.ssl_keyfile]
        if not tls and any(tls_files):
            raise ValueError(
                f"TLS files are set but security_protocol is {self.security_protocol}: "
                "set CXMON_SECURITY_PROTOCOL=SSL or SASL_SSL"
            )
        if self.ssl_keyfile is not None and self.ssl_certfile is None:
            raise ValueError("CXMON_SSL_KEYFILE needs CXMON_SSL_CERTFILE (the client certificate)")
        return self

    def rule_limits(self) -> RuleLimits:
        """The limits rule files are loaded under."""
        from monitor.rules.limits import RuleLimits
        from monitor.rules.sandbox import TemplateLimits

        return RuleLimits(
            max_rules=self.max_rules,
            max_file_bytes=self.max_rule_file_bytes,
            max_cel_cost=self.max_cel_cost,
            max_event_bytes=self.max_event_bytes,
            max_data_items=self.max_data_items,
            template=TemplateLimits(
                max_chars=self.template_max_chars,
                max_range=self.template_max_range,
                budget=self.template_budget,
            ),
        )

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
                "session_timeout": 2.0,
                "heartbeat_interval": 0.5,
                # Faust 0.15 does not commit on revoke; commit often so a takeover replays little.
                "commit_interval": 0.2,
            }
        return {
            "rebalance_timeout": 60.0,
            "session_timeout": 60.0,
            "heartbeat_interval": 3.0,
        }
