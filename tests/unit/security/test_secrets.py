"""A Kafka password given in settings never shows in `cxmon validate`, in a refused start, in a
settings error, or in the settings' own repr."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.settings import Settings

ROOT = Path(__file__).resolve().parents[3]
PASSWORD = "pw-0d9e-never-print"  # noqa: S105  (the marker the tests grep for)
SASL = {
    "CXMON_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
    "CXMON_SASL_USERNAME": "cxmon",
    "CXMON_SASL_PASSWORD": PASSWORD,
}


def cxmon(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        env={**os.environ, **SASL, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_validate_output_has_no_password() -> None:
    done = cxmon("validate", "rules")
    assert done.returncode == 0, done.stderr
    assert PASSWORD not in done.stdout + done.stderr


def test_validate_errors_have_no_password() -> None:
    done = cxmon("validate", "tests/unit/bad_rules", "--format", "json")
    assert done.returncode == 1
    assert PASSWORD not in done.stdout + done.stderr


def test_refused_start_has_no_password(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("version: 1\nrules:\n  - id: x\n")
    done = cxmon("run", CXMON_RULES_PATH=str(tmp_path), CXMON_BOOTSTRAP_SERVERS="127.0.0.1:1")
    assert done.returncode != 0
    assert "refusing to start" in done.stderr
    assert PASSWORD not in done.stdout + done.stderr


@pytest.mark.parametrize("bad", [{"CXMON_MAX_RULES": "many"}, {"CXMON_SASL_USERNAME": ""}])
def test_settings_errors_have_no_password(bad: dict[str, str]) -> None:
    done = cxmon("validate", "rules", **bad)
    assert done.returncode != 0
    assert PASSWORD not in done.stdout + done.stderr


def test_settings_repr_and_dump_hide_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SASL.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.sasl_password is not None
    assert settings.sasl_password.get_secret_value() == PASSWORD
    for text in (repr(settings), str(settings), settings.model_dump_json()):
        assert PASSWORD not in text
