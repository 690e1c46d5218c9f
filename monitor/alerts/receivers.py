"""Turn a loaded alerting config into running receivers and the notify pipeline."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from monitor.alerts.channels import Channel
from monitor.alerts.channels.alertmanager import AlertmanagerChannel
from monitor.alerts.channels.apprise import AppriseChannel
from monitor.alerts.channels.console import ConsoleChannel
from monitor.alerts.channels.webhook import WebhookChannel
from monitor.alerts.config import ChannelSpec
from monitor.alerts.loader import AlertingConfig, resolve_secret, resolve_url
from monitor.alerts.pipeline import Receiver, Stage
from monitor.alerts.ratelimit import RateLimit
from monitor.alerts.redact import Redaction
from monitor.alerts.secrets import Redactor, SecretError
from monitor.alerts.silences import SilenceBook
from monitor.alerts.stages.deliver import DeadLetters, DeliverStage, RetryPolicy
from monitor.alerts.stages.silence import MuteStage, SilenceStage
from monitor.alerts.stages.throttle import ThrottleStage
from monitor.metrics import NotifierMetrics

log = logging.getLogger("cxmon.notify")
KafkaFactory = Callable[[str], Channel]


@dataclass
class ChannelFactory:
    """Builds channels from specs; the Kafka-topic channel comes from the streams package."""

    env: Mapping[str, str]
    redactor: Redactor
    console_write: Callable[[str], None]
    kafka: KafkaFactory | None = None
    on_resend: Callable[[str], None] | None = None  # alertmanager re-post rounds, by outcome

    def build(self, spec: ChannelSpec) -> Channel:
        """One channel; raises SecretError (unset secret) or ValueError (bad URL)."""
        url = resolve_url(spec, self.env, self.redactor)
        kind = spec.kind()
        timeout = spec.timeout.total_seconds()
        if kind == "console":
            return ConsoleChannel(self.console_write)
        if kind == "webhook":
            secret = resolve_secret(spec, self.env, self.redactor)
            return WebhookChannel(url, secret, timeout, self.redactor)
        if kind == "alertmanager":
            return AlertmanagerChannel(
                url,
                self.redactor,
                timeout,
                resend=spec.resend,
                key_label=spec.key_label,
                on_resend=self.on_resend,
            )
        if kind == "kafka":
            if self.kafka is None:
                raise ValueError("kafka:// channels work only inside the notifier process")
            return self.kafka(url.removeprefix("kafka://").strip("/"))
        return AppriseChannel(url, self.redactor, timeout)


def build_receivers(config: AlertingConfig, factory: ChannelFactory) -> dict[str, Receiver]:
    """Every receiver; channels whose secret is unset are left off (and logged)."""
    receivers: dict[str, Receiver] = {}
    for spec in config.spec.receivers:
        receiver = Receiver(
            spec.name,
            [],
            Redaction.from_spec(spec.redact),
            RateLimit(spec.rate_limit.count, spec.rate_limit.per) if spec.rate_limit else None,
        )
        for channel_spec in spec.channel_specs():
            try:
                receiver.channels.append(factory.build(channel_spec))
            except SecretError as exc:
                receiver.disabled.append(str(exc))
                log.warning("receiver %s: a channel is off: %s", spec.name, exc)
        receivers[spec.name] = receiver
    return receivers


def channel_labels(receivers: Mapping[str, Receiver]) -> list[tuple[str, str]]:
    """(receiver, channel kind) pairs, for creating metric series at zero."""
    return sorted({(r.name, c.kind) for r in receivers.values() for c in r.channels})


def build_stages(
    silences: SilenceBook,
    metrics: NotifierMetrics,
    policy: RetryPolicy,
    dead_letters: DeadLetters,
) -> list[Stage]:
    """mute -> silence -> rate limit -> deliver (which applies the receiver's PII redaction)."""
    return [
        MuteStage(metrics),
        SilenceStage(silences, metrics),
        ThrottleStage(),
        DeliverStage(policy, dead_letters, metrics),
    ]
