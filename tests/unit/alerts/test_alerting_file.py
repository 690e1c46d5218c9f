"""Loading alerting.yaml: every problem at file:line:col; secrets expanded and redacted."""

from __future__ import annotations

from pathlib import Path

from monitor.alerts.loader import AlertingLoad, load_alerting
from monitor.alerts.secrets import Redactor, expand
from monitor.errors import IssueCode

SHIPPED = Path(__file__).parents[3] / "alerting.yaml"


def load(
    tmp_path: Path, text: str, env: dict[str, str] | None = None, redactor: Redactor | None = None
) -> AlertingLoad:
    path = tmp_path / "alerting.yaml"
    path.write_text(text, encoding="utf-8")
    return load_alerting(path, env or {}, redactor)


def test_the_shipped_file_loads_without_any_secret_set() -> None:
    loaded = load_alerting(SHIPPED, {})
    assert loaded.config is not None and not loaded.errors
    assert {i.code for i in loaded.issues} == {IssueCode.MISSING_FIELD}  # unset ${VAR}s: warnings


def test_unknown_receiver_and_field_are_located(tmp_path: Path) -> None:
    loaded = load(
        tmp_path,
        "version: 1\nreceivers:\n  - name: a\n    channels: [console://]\nroute:\n  receiver: a\n  routes:\n    - receiver: nobody\n",
    )
    assert [(i.code, i.location.line, i.location.col) for i in loaded.errors] == [
        (IssueCode.UNKNOWN_NAME, 8, 17)
    ]
    loaded = load(
        tmp_path,
        "version: 1\nreceivers:\n  - name: a\n    channels: [console://]\nroute:\n  receiver: a\n  group_wiat: 1m\n",
    )
    (issue,) = loaded.errors
    assert (issue.code, issue.location.line, issue.location.col) == (IssueCode.UNKNOWN_FIELD, 7, 3)


def test_bad_duration_is_reported_with_a_hint(tmp_path: Path) -> None:
    loaded = load(
        tmp_path,
        "version: 1\nreceivers:\n  - name: a\n    channels: [console://]\nroute:\n  receiver: a\n  group_wait: 30 seconds\n",
    )
    (issue,) = loaded.errors
    assert (issue.code, issue.location.line, issue.location.col) == (IssueCode.RULE_DURATION, 7, 15)


def test_a_bad_apprise_url_is_an_error_that_never_shows_the_secret(tmp_path: Path) -> None:
    redactor = Redactor()
    text = "version: 1\nreceivers:\n  - name: a\n    channels: ['${SLACK_URL}']\nroute:\n  receiver: a\n"
    loaded = load(tmp_path, text, {"SLACK_URL": "nosuchscheme://TOPSECRETTOKEN123/x"}, redactor)
    (issue,) = loaded.errors
    assert issue.location.line == 4 and "TOPSECRETTOKEN123" not in str(issue)


def test_secret_files_and_redaction(tmp_path: Path) -> None:
    redactor = Redactor()
    secret = tmp_path / "hook"
    secret.write_text("https://hooks.example.com/services/T000/B000/abcdefghijkl\n")
    text = f"version: 1\nreceivers:\n  - name: a\n    channels:\n      - {{url_file: {secret}, type: webhook}}\nroute:\n  receiver: a\n"
    assert load(tmp_path, text, {}, redactor).config is not None
    line = redactor.redact("POST https://hooks.example.com/services/T000/B000/abcdefghijkl failed")
    assert "abcdefghijkl" not in line
    assert (
        redactor.redact("mailtos://user:hunter22@smtp.example.com")
        == "mailtos://user:***@smtp.example.com"
    )
    assert expand("x${A}y", {"A": "-"}) == "x-y"


def test_alertmanager_channels_validate_and_a_wrong_url_is_located(tmp_path: Path) -> None:
    head = "version: 1\nreceivers:\n  - name: am\n    channels:\n"
    tail = "route:\n  receiver: am\n"
    good = load(
        tmp_path,
        head
        + "      - alertmanager://127.0.0.1:9093\n"
        + "      - {url: 'https://am.example.com', type: alertmanager, resend: 30s}\n"
        + tail,
    )
    assert good.config is not None and not good.issues
    specs = good.config.spec.receivers[0].channel_specs()
    assert [s.kind() for s in specs] == ["alertmanager", "alertmanager"]
    bad = load(tmp_path, head + "      - {url: 'slack://x/y/z', type: alertmanager}\n" + tail)
    (issue,) = bad.errors
    assert (issue.location.line, "alertmanager://HOST:PORT" in issue.message) == (5, True)
    fast = load(tmp_path, head + "      - {url: 'alertmanager://h:1', resend: 0s}\n" + tail)
    assert fast.errors and {i.location.line for i in fast.errors} == {5}
    assert any("at least 1s" in i.message for i in fast.errors)
