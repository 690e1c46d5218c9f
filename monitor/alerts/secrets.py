"""Secrets in `alerting.yaml`: `${VAR}` from the environment, `*_file` from files, and redaction.

Secrets never live in the file itself. Every value that came from the environment or a file is
remembered by the `Redactor`, which replaces it (and any URL password) with `***` in log lines,
errors and `cxmon validate` output.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# user:password@ in any URL-like text, and query parameters that usually carry a secret
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@/\s]+)@")
_SECRET_QUERY = re.compile(
    r"(?i)(?P<name>[?&](?:token|secret|key|apikey|api_key|password|pass|sig|signature|code)=)"
    r"(?P<value>[^&\s]+)"
)
MASK = "***"


class SecretError(ValueError):
    """A `${VAR}` is unset or a `*_file` cannot be read."""


SHORT = 8  # values shorter than this are masked only where they stand alone (see `remember`)


@dataclass
class Redactor:
    """Knows every secret value in use and masks it wherever it appears."""

    secrets: set[str] = field(default_factory=set)
    short: set[str] = field(default_factory=set)
    _short_pattern: re.Pattern[str] | None = field(default=None, repr=False)

    def remember(self, value: str) -> None:
        """Mask this value from now on, whatever its length.

        A value of `SHORT` characters or more is masked wherever it appears; a shorter one
        (`k3y9z`) wherever it stands alone, not inside a longer word or number, so that a
        one-letter secret does not mask every word holding that letter.
        """
        self._add(value)
        # A URL's path segments are tokens for Slack, Teams and most webhooks.
        parts = urlsplit(value) if "://" in value else None
        if parts is not None:
            for segment in parts.path.split("/"):
                self._add(segment)
            if parts.password:
                self._add(parts.password)

    def _add(self, value: str) -> None:
        if not value.strip():
            return
        if len(value) >= SHORT:
            self.secrets.add(value)
        elif value not in self.short:
            self.short.add(value)
            alternatives = "|".join(re.escape(v) for v in sorted(self.short, key=len, reverse=True))
            self._short_pattern = re.compile(rf"(?<![A-Za-z0-9])(?:{alternatives})(?![A-Za-z0-9])")

    def redact(self, text: str) -> str:
        """The text with every known secret, URL password and secret-looking query value masked."""
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, MASK)
        if self._short_pattern is not None:
            text = self._short_pattern.sub(MASK, text)
        text = _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
        return _SECRET_QUERY.sub(lambda m: f"{m['name']}{MASK}", text)


class RedactingFilter(logging.Filter):
    """A logging filter that masks secrets in every record (message and arguments)."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        """Render the message once, redacted; always keep the record."""
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a malformed format string: keep it as written
            message = str(record.msg)
        record.msg = self.redactor.redact(message)
        # Empty, not None: formatters such as mode's wrap a non-tuple into a one-argument tuple
        # and then fail to format a message with no placeholders ("--- Logging error ---").
        record.args = ()
        if record.exc_info and not record.exc_text:
            record.exc_text = self.redactor.redact(
                logging.Formatter().formatException(record.exc_info)
            )
        return True


def install_log_redaction(redactor: Redactor) -> None:
    """Mask secrets in every log line of this process (all handlers of the root logger)."""
    log_filter = RedactingFilter(redactor)
    root = logging.getLogger()
    for handler in root.handlers:
        handler.addFilter(log_filter)
    root.addFilter(log_filter)
    for name in ("apprise", "cxmon", "faust", "aiokafka", "mode"):
        logging.getLogger(name).addFilter(log_filter)


def variables_in(text: str) -> list[str]:
    """The `${VAR}` names a value refers to."""
    return _VAR.findall(text)


def expand(text: str, env: Mapping[str, str], redactor: Redactor | None = None) -> str:
    """Replace every `${VAR}` with its value; raise SecretError naming an unset one."""

    def value(match: re.Match[str]) -> str:
        name = match[1]
        if name not in env or env[name] == "":
            raise SecretError(f"environment variable {name} is not set")
        if redactor is not None:
            redactor.remember(env[name])
        return env[name]

    return _VAR.sub(value, text)


def read_secret_file(path: str, redactor: Redactor | None = None) -> str:
    """The stripped content of a secret file (Docker/Kubernetes secrets), remembered for redaction."""
    try:
        value = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise SecretError(f"cannot read secret file {path}: {exc.strerror}") from None
    if redactor is not None:
        redactor.remember(value)
    return value
