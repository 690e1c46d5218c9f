"""What Slack and Teams receive for a sample alert: Apprise's real requests, captured on a local
HTTP server (Slack's fixed endpoint is redirected to it; Teams Workflows URLs take a host)."""

from __future__ import annotations

import json
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from apprise.plugins.slack import NotifySlack
from pytest_httpserver import HTTPServer

from monitor.alerts.channels.apprise import AppriseChannel
from monitor.alerts.config import RedactSpec
from monitor.alerts.redact import Redaction, pseudonym
from monitor.alerts.render import SLACK_LIMITS, Limits, render, slack_blocks, teams_card
from monitor.alerts.secrets import Redactor
from tests.unit.alerts.conftest import make_alert


async def test_slack_gets_block_kit_with_title_key_owners_timeline_and_runbook(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(NotifySlack, "webhook_url", httpserver.url_for("/services"))
    httpserver.expect_request(
        "/services/T0000000/B0000000/abcdefghijklmnopqrstuvwx", method="POST"
    ).respond_with_data("ok")
    channel = AppriseChannel("slack://T0000000/B0000000/abcdefghijklmnopqrstuvwx/", Redactor())
    alert = make_alert()
    await channel.send([alert], receiver="billing", group_key="g", repeat=False)
    ((request, _),) = httpserver.log
    blocks = json.loads(request.get_data())["attachments"][0]["blocks"]
    expected = slack_blocks(render([alert], "markdown", SLACK_LIMITS)[0])["blocks"]
    assert (
        blocks[:2] == expected
    )  # header + mrkdwn section, as `cxmon render --channel slack` shows
    assert (
        blocks[0]["text"]["text"]
        == "[FIRING] HIGH Billing charged a fee that support promised to waive (cust-00001)"
    )
    body = blocks[1]["text"]["text"]
    for part in (
        "*Customer:* `cust-00001`",
        "support → billing",
        "`step.0`",
        "<https://wiki.example.com/cx/waivers",
    ):
        assert part in body


@pytest.fixture
def https_server(tmp_path: Path) -> Iterator[HTTPServer]:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = HTTPServer(host="127.0.0.1", port=0, ssl_context=context)
    server.start()
    try:
        yield server
    finally:
        server.clear()
        server.stop()


async def test_teams_gets_an_adaptive_card_with_the_rendered_alert(
    https_server: HTTPServer,
) -> None:
    path = "/workflows/abc123/triggers/manual/paths/invoke"
    https_server.expect_request(path, method="POST").respond_with_data("ok", status=202)
    url = (
        f"workflows://127.0.0.1:{https_server.port}/abc123/SIGNATURE0123456789/?verify=no&image=no"
    )
    channel = AppriseChannel(url, Redactor())
    alert = make_alert(status="resolved")
    await channel.send([alert], receiver="onboarding", group_key="g", repeat=False)
    ((request, _),) = https_server.log
    card = json.loads(request.get_data())["attachments"][0]["content"]
    assert card["type"] == "AdaptiveCard"
    message = render([alert], "markdown", Limits(body=1000))[0]
    assert card["body"] == teams_card(message)["body"]
    assert (
        "**Resolves:** the alert raised 2026-05-03 09:00 UTC for cust-00001 (fingerprint `fp0001`)"
        in card["body"][1]["text"]
    )


def test_a_large_group_is_split_to_fit_the_channel_and_keeps_every_alert() -> None:
    alerts = [make_alert(n, evidence=120) for n in range(12)]
    messages = render(alerts, "markdown", SLACK_LIMITS)
    assert len(messages) > 1
    assert all(len(m.body) <= 3000 and len(m.title) <= 150 for m in messages)
    assert all(any(f"cust-{n:05d}" in m.body for m in messages) for n in range(12))
    assert "earlier event(s)" in messages[0].body


def test_redaction_hashes_the_key_everywhere_and_drops_fields() -> None:
    redaction = Redaction.from_spec(RedactSpec(hash=["key", "labels.email"], drop=["evidence.id"]))
    assert redaction is not None
    safe = redaction.apply(make_alert())
    assert safe.key == pseudonym("cust-00001") and "cust-00001" not in safe.message
    assert safe.labels == {"team": "billing", "email": pseudonym("c1@example.com")}
    assert {e.id for e in safe.evidence} == {"[redacted]"}
