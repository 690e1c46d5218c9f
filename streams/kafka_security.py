"""The one place that turns `Settings`' Kafka security fields into client configuration.

Every Kafka client cxmon makes gets its security from here: the Faust app (and through it
every aiokafka consumer, producer and admin client it creates) via `faust_credentials`, and the
kafka-python producer and admin client via `kafka_python_config`. Both use the TLS context
built by `ssl_context`, so a CA file, a client certificate and host-name checking mean the same
thing to every client.
"""

from __future__ import annotations

import ssl
from typing import Any

import faust
from faust.types.auth import CredentialsT

from monitor.settings import Settings


def uses_tls(settings: Settings) -> bool:
    """True for SSL and SASL_SSL."""
    return settings.security_protocol in ("SSL", "SASL_SSL")


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context for SSL and SASL_SSL (None otherwise).

    Verifies brokers against `ssl_cafile` (or the system CAs), presents `ssl_certfile` and
    `ssl_keyfile` as the client certificate when given, and checks host names unless
    `ssl_check_hostname` is false.
    """
    if not uses_tls(settings):
        return None
    context = ssl.create_default_context(
        ssl.Purpose.SERVER_AUTH,
        cafile=str(settings.ssl_cafile) if settings.ssl_cafile else None,
    )
    if settings.ssl_certfile is not None:
        context.load_cert_chain(
            certfile=str(settings.ssl_certfile),
            keyfile=str(settings.ssl_keyfile) if settings.ssl_keyfile else None,
        )
    context.check_hostname = settings.ssl_check_hostname
    return context


def _password(settings: Settings) -> str | None:
    return settings.sasl_password.get_secret_value() if settings.sasl_password else None


def kafka_python_config(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for kafka-python's KafkaProducer, KafkaAdminClient and KafkaConsumer."""
    config: dict[str, Any] = {"security_protocol": settings.security_protocol}
    context = ssl_context(settings)
    if context is not None:
        config["ssl_context"] = context
        config["ssl_check_hostname"] = settings.ssl_check_hostname
    if settings.security_protocol.startswith("SASL_"):
        config["sasl_mechanism"] = settings.sasl_mechanism
        config["sasl_plain_username"] = settings.sasl_username
        config["sasl_plain_password"] = _password(settings)
    return config


def faust_credentials(settings: Settings) -> CredentialsT | None:
    """`broker_credentials` for the Faust app (None for PLAINTEXT)."""
    context = ssl_context(settings)
    if settings.security_protocol.startswith("SASL_"):
        return faust.SASLCredentials(
            username=settings.sasl_username,
            password=_password(settings),
            ssl_context=context,  # SASL_SSL when set, SASL_PLAINTEXT otherwise
            mechanism=settings.sasl_mechanism,
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None


def describe(settings: Settings) -> str:
    """A log line about the connection's security; never includes the password."""
    parts: list[str] = [settings.security_protocol]
    if settings.security_protocol.startswith("SASL_"):
        parts.append(f"{settings.sasl_mechanism} as {settings.sasl_username}")
    if uses_tls(settings):
        parts.append(f"CA {settings.ssl_cafile or 'system'}")
        if settings.ssl_certfile:
            parts.append(f"client certificate {settings.ssl_certfile}")
        if not settings.ssl_check_hostname:
            parts.append("host names not checked")
    return ", ".join(parts)


def aiokafka_config(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for aiokafka clients made outside Faust (as Faust makes its own)."""
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

    return dict(credentials_to_aiokafka_auth(faust_credentials(settings)))
