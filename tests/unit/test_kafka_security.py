"""Kafka security settings: parsed from the environment and the settings file, checked, and
handed to every Kafka client (Faust's aiokafka clients and kafka-python's) without leaking the
password anywhere it could be printed."""

from __future__ import annotations

import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar, Literal

import pytest
import trustme
from faust.auth import SASLCredentials, SSLCredentials
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from pydantic import SecretStr, ValidationError

import streams.producer
import streams.topics
from monitor.settings import Settings
from monitor.settings_file import SettingsFileError, explain, load_settings_file
from streams.app import build_topology
from streams.kafka_security import (
    aiokafka_config,
    describe,
    faust_credentials,
    kafka_python_config,
)

PASSWORD = "s3cr3t-Pa55word"  # noqa: S105  # a test value that must never be printed
ROOT = Path(__file__).parents[2]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what a test sets counts; a developer's CXMON_* must not leak in."""
    import os

    for name in list(os.environ):
        if name.startswith("CXMON_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A throwaway CA, and a client certificate and key it signed, as PEM files."""
    directory = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    client = ca.issue_cert("cxmon-worker")
    files = {
        "ca": directory / "ca.pem",
        "cert": directory / "cert.pem",
        "key": directory / "key.pem",
    }
    ca.cert_pem.write_to_path(str(files["ca"]))
    client.cert_chain_pems[0].write_to_path(str(files["cert"]))
    client.private_key_pem.write_to_path(str(files["key"]))
    return files


def sasl_ssl_env(monkeypatch: pytest.MonkeyPatch, pki: dict[str, Path]) -> None:
    monkeypatch.setenv("CXMON_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("CXMON_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("CXMON_SASL_USERNAME", "cxmon")
    monkeypatch.setenv("CXMON_SASL_PASSWORD", PASSWORD)
    monkeypatch.setenv("CXMON_SSL_CAFILE", str(pki["ca"]))
    monkeypatch.setenv("CXMON_SSL_CERTFILE", str(pki["cert"]))
    monkeypatch.setenv("CXMON_SSL_KEYFILE", str(pki["key"]))


def ca_subjects(context: ssl.SSLContext) -> list[Any]:
    return [cert["subject"] for cert in context.get_ca_certs()]


def test_plaintext_is_the_default_and_adds_nothing_but_the_protocol() -> None:
    settings = Settings()
    assert kafka_python_config(settings) == {"security_protocol": "PLAINTEXT"}
    assert faust_credentials(settings) is None
    conf = build_topology(settings).app.conf
    assert credentials_to_aiokafka_auth(conf.broker_credentials, conf.ssl_context) == {
        "security_protocol": "PLAINTEXT"
    }


def test_sasl_ssl_from_the_environment_reaches_kafka_python(
    monkeypatch: pytest.MonkeyPatch, pki: dict[str, Path]
) -> None:
    sasl_ssl_env(monkeypatch, pki)
    config = kafka_python_config(Settings())
    assert config["security_protocol"] == "SASL_SSL"
    assert config["sasl_mechanism"] == "SCRAM-SHA-512"
    assert config["sasl_plain_username"] == "cxmon"
    assert config["sasl_plain_password"] == PASSWORD
    assert config["ssl_check_hostname"] is True
    context = config["ssl_context"]
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert ca_subjects(context) == [ca_subjects(ssl.create_default_context(cafile=pki["ca"]))[0]]
    # kafka-python rejects unknown configuration keys: every one must be a real option.
    for client in (KafkaProducer, KafkaAdminClient, KafkaConsumer):
        assert set(config) <= set(client.DEFAULT_CONFIG), client.__name__


def test_sasl_ssl_reaches_the_faust_app_and_its_aiokafka_clients(
    monkeypatch: pytest.MonkeyPatch, pki: dict[str, Path]
) -> None:
    sasl_ssl_env(monkeypatch, pki)
    conf = build_topology(Settings()).app.conf
    credentials = conf.broker_credentials
    assert isinstance(credentials, SASLCredentials)
    auth = credentials_to_aiokafka_auth(credentials, conf.ssl_context)
    assert auth["security_protocol"] == "SASL_SSL"
    assert auth["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (auth["sasl_plain_username"], auth["sasl_plain_password"]) == ("cxmon", PASSWORD)
    assert ca_subjects(auth["ssl_context"]) == ca_subjects(
        ssl.create_default_context(cafile=pki["ca"])
    )


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256"])
def test_sasl_without_tls(
    monkeypatch: pytest.MonkeyPatch, mechanism: Literal["PLAIN", "SCRAM-SHA-256"]
) -> None:
    settings = Settings(
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism=mechanism,
        sasl_username="u",
        sasl_password=SecretStr(PASSWORD),
    )
    config = kafka_python_config(settings)
    assert "ssl_context" not in config
    assert (config["security_protocol"], config["sasl_mechanism"]) == ("SASL_PLAINTEXT", mechanism)
    auth = credentials_to_aiokafka_auth(faust_credentials(settings))
    assert (auth["security_protocol"], auth["sasl_mechanism"]) == ("SASL_PLAINTEXT", mechanism)
    assert auth["ssl_context"] is None


def test_tls_only_with_unchecked_host_names(pki: dict[str, Path]) -> None:
    settings = Settings(security_protocol="SSL", ssl_cafile=pki["ca"], ssl_check_hostname=False)
    config = kafka_python_config(settings)
    assert "sasl_mechanism" not in config
    assert config["ssl_context"].check_hostname is False
    assert config["ssl_context"].verify_mode == ssl.CERT_REQUIRED  # still verified against the CA
    credentials = faust_credentials(settings)
    assert isinstance(credentials, SSLCredentials)
    assert credentials_to_aiokafka_auth(credentials)["security_protocol"] == "SSL"


def test_the_settings_file_and_a_password_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pki: dict[str, Path]
) -> None:
    secret = tmp_path / "password"
    secret.write_text(PASSWORD + "\n")  # as `echo` or a Kubernetes Secret writes it
    config = tmp_path / "cxmon.yaml"
    config.write_text(
        "bootstrap_servers: kafka-1:9093,kafka-2:9093\n"
        "security_protocol: SASL_SSL\n"
        "sasl_mechanism: SCRAM-SHA-256\n"
        "sasl_username: from-file\n"
        f"sasl_password_file: {secret}\n"
        f"ssl_cafile: {pki['ca']}\n"
        "topic_partitions: 12\n"
        "topic_replication: 3\n"
    )
    monkeypatch.setenv("CXMON_CONFIG", str(config))
    monkeypatch.setenv("CXMON_SASL_USERNAME", "from-env")  # the environment wins over the file
    settings = Settings()
    assert settings.sasl_password is not None
    assert settings.sasl_password.get_secret_value() == PASSWORD
    assert (settings.topic_partitions, settings.topic_replication) == (12, 3)
    kafka = kafka_python_config(settings)
    assert (kafka["sasl_mechanism"], kafka["sasl_plain_username"]) == ("SCRAM-SHA-256", "from-env")
    assert kafka["sasl_plain_password"] == PASSWORD
    credentials = build_topology(settings).app.conf.broker_credentials
    assert isinstance(credentials, SASLCredentials)
    assert credentials.password == PASSWORD


def test_the_password_is_never_printed(
    monkeypatch: pytest.MonkeyPatch, pki: dict[str, Path]
) -> None:
    sasl_ssl_env(monkeypatch, pki)
    settings = Settings()
    printed = [repr(settings), str(settings), describe(settings), repr(faust_credentials(settings))]
    printed.append(settings.model_dump_json())
    assert all(PASSWORD not in text for text in printed)
    assert "SCRAM-SHA-512 as cxmon" in describe(settings)
    monkeypatch.setenv("CXMON_SASL_USERNAME", "")  # invalid: the error must not echo the input
    with pytest.raises(ValidationError) as caught:
        Settings()
    assert PASSWORD not in str(caught.value)
    assert PASSWORD not in "\n".join(explain(caught.value))


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"security_protocol": "SASL_SSL"}, "needs CXMON_SASL_USERNAME and CXMON_SASL_PASSWORD"),
        ({"sasl_username": "u", "sasl_password": "p"}, "set CXMON_SECURITY_PROTOCOL=SASL_SSL"),
        ({"security_protocol": "SASL_SSL", "sasl_mechanism": "GSSAPI"}, "SCRAM-SHA-512"),
        ({"security_protocol": "TLS"}, "SASL_SSL"),
        (
            {"ssl_cafile": "/nonexistent/ca.pem", "security_protocol": "SSL"},
            "does not point to a file",
        ),
    ],
)
def test_unusable_combinations_are_refused(values: dict[str, Any], expected: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(**values)
    assert expected in "\n".join(explain(caught.value))


def test_tls_files_without_tls_and_a_key_without_a_certificate(pki: dict[str, Path]) -> None:
    with pytest.raises(ValidationError, match="set CXMON_SECURITY_PROTOCOL=SSL or SASL_SSL"):
        Settings(ssl_cafile=pki["ca"])
    with pytest.raises(ValidationError, match="needs CXMON_SSL_CERTFILE"):
        Settings(security_protocol="SSL", ssl_keyfile=pki["key"])


def test_password_and_password_file_together_are_refused(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("x")
    with pytest.raises(ValidationError, match="not both"):
        Settings(
            security_protocol="SASL_SSL",
            sasl_username="u",
            sasl_password=SecretStr("y"),
            sasl_password_file=secret,
        )


def test_errors_point_into_the_settings_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "cxmon.yaml"
    config.write_text("app_id: cx\n# brokers\nsecurity_protocol: SASL_TLS\nsasl_mechanizm: PLAIN\n")
    monkeypatch.setenv("CXMON_CONFIG", str(config))
    with pytest.raises(ValidationError) as caught:
        Settings()
    lines = explain(caught.value, load_settings_file(config))
    assert f"{config}:3:1: security_protocol (or CXMON_SECURITY_PROTOCOL): " in lines[0]
    assert lines[1].startswith(f"{config}:4:1: sasl_mechanizm (or CXMON_SASL_MECHANIZM): unknown")


def test_a_broken_settings_file_names_its_position(tmp_path: Path) -> None:
    config = tmp_path / "cxmon.yaml"
    config.write_text("app_id: cx\nbootstrap_servers: [a, b\n")
    with pytest.raises(SettingsFileError) as caught:
        load_settings_file(config)
    assert str(caught.value.location).startswith(f"{config}:")
    assert caught.value.location.line >= 2
    with pytest.raises(SettingsFileError, match="expected a mapping"):
        config.write_text("- a\n- b\n")
        load_settings_file(config)
    with pytest.raises(SettingsFileError, match="cannot read"):
        load_settings_file(tmp_path / "missing.yaml")


def test_the_cli_reports_bad_settings_without_a_traceback(tmp_path: Path) -> None:
    env = {"CXMON_SECURITY_PROTOCOL": "SASL_SSL", "CXMON_SASL_PASSWORD": PASSWORD, "PATH": ""}
    result = subprocess.run(
        [sys.executable, "-m", "cli.main", "publish", "-"],
        env=env,
        cwd=ROOT,
        input=b"",
        capture_output=True,
        timeout=60,
    )
    stderr = result.stderr.decode()
    assert result.returncode == 2, stderr
    assert "needs CXMON_SASL_USERNAME" in stderr
    assert "Traceback" not in stderr and PASSWORD not in stderr


class RecordingClient:
    """Stands in for kafka-python's clients, which connect as soon as they are constructed:
    it records the configuration it was given, which is what these tests are about."""

    calls: ClassVar[list[dict[str, Any]]] = []

    def __init__(self, **config: Any) -> None:
        RecordingClient.calls.append(config)

    def list_topics(self) -> list[str]:
        return ["cx.events", "cx.events.keyed", "cx.alerts", "cx.events.dlq"]

    def close(self) -> None:
        pass


def test_the_admin_client_and_the_publisher_get_the_security_settings(
    monkeypatch: pytest.MonkeyPatch, pki: dict[str, Path]
) -> None:
    sasl_ssl_env(monkeypatch, pki)
    monkeypatch.setattr(streams.topics, "KafkaAdminClient", RecordingClient)
    monkeypatch.setattr(streams.producer, "KafkaProducer", RecordingClient)
    RecordingClient.calls.clear()
    settings = Settings()
    assert streams.topics.ensure_topics(settings) == []
    streams.producer.EventPublisher.for_settings(settings)
    admin, producer = RecordingClient.calls
    for config in (admin, producer):
        assert config["security_protocol"] == "SASL_SSL"
        assert config["sasl_plain_password"] == PASSWORD
        assert config["bootstrap_servers"] == settings.bootstrap_servers
        assert isinstance(config["ssl_context"], ssl.SSLContext)


def test_aiokafka_clients_outside_faust_get_the_same_security(
    monkeypatch: pytest.MonkeyPatch, pki: dict[str, Path]
) -> None:
    sasl_ssl_env(monkeypatch, pki)
    config = aiokafka_config(Settings())
    assert config["security_protocol"] == "SASL_SSL"
    assert (config["sasl_mechanism"], config["sasl_plain_password"]) == ("SCRAM-SHA-512", PASSWORD)
    assert isinstance(config["ssl_context"], ssl.SSLContext)


def test_empty_variables_count_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    """docker compose passes `${CXMON_SASL_PASSWORD:-}` as an empty string when it is not set."""
    for name in ("SASL_USERNAME", "SASL_PASSWORD", "SSL_CAFILE", "SECURITY_PROTOCOL"):
        monkeypatch.setenv(f"CXMON_{name}", "")
    settings = Settings()
    assert settings.security_protocol == "PLAINTEXT"
    assert settings.sasl_password is None and settings.ssl_cafile is None
