"""Read `alerting.yaml`: YAML -> `AlertingFileSpec` + compiled route tree, every issue with file:line:col.

Raises only OSError. Unset `${VAR}`s are warnings (the receiver's channel stays off until the
variable is set), so a fresh checkout validates and runs with the console receiver alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from monitor.alerts.config import AlertingFileSpec, ChannelSpec, RouteSpec
from monitor.alerts.secrets import Redactor, SecretError, expand, read_secret_file, variables_in
from monitor.alerts.stages.route import Route, compile_route
from monitor.errors import IssueCode, RuleIssue, SourceLocation
from monitor.rules.loader import pydantic_issues
from monitor.rules.locate import Locator, parse_yaml, to_plain

Path_ = tuple[str | int, ...]


@dataclass(frozen=True)
class AlertingConfig:
    """A valid alerting file: the spec and its compiled routing tree."""

    file: str
    spec: AlertingFileSpec
    root: Route

    def receiver_names(self) -> list[str]:
        """Receivers in file order."""
        return [r.name for r in self.spec.receivers]


@dataclass
class AlertingLoad:
    """The config (None if there are errors) and every issue found."""

    config: AlertingConfig | None
    issues: list[RuleIssue] = field(default_factory=list)

    @property
    def errors(self) -> list[RuleIssue]:
        """Issues that make the file unusable."""
        return [i for i in self.issues if i.severity == "error"]


def looks_like_alerting(path: Path) -> bool:
    """Whether a YAML file is an alerting config (has top-level `receivers:` or `route:`)."""
    if not path.is_file():
        return False
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    return any(line.startswith(("receivers:", "route:")) for line in text.splitlines())


def load_alerting(
    path: Path, env: Mapping[str, str], redactor: Redactor | None = None
) -> AlertingLoad:
    """Parse, schema-check and compile one alerting file; check its channels and secrets."""
    name = str(path)
    text = path.read_text(encoding="utf-8")
    root, locator, syntax = parse_yaml(name, text)
    if locator is None:
        return AlertingLoad(None, [syntax] if syntax else [])
    if not isinstance(root, dict) or root.get("version") != 1:
        where = (
            locator.value(("version",))
            if isinstance(root, dict) and "version" in root
            else SourceLocation(name, 1, 1)
        )
        return AlertingLoad(
            None,
            [
                RuleIssue(
                    IssueCode.FILE_VERSION,
                    "an alerting file must be a mapping that starts with `version: 1`",
                    where,
                    hint="add `version: 1`, `receivers:` and `route:`",
                )
            ],
        )
    try:
        spec = AlertingFileSpec.model_validate(to_plain(root))
    except ValidationError as exc:
        return AlertingLoad(None, pydantic_issues(exc, (), locator, None, AlertingFileSpec))
    issues = _check_references(spec, locator)
    issues.extend(check_channels(spec, locator, env, redactor))
    compiled: Route | None = None
    try:
        compiled = compile_route(spec.route)
    except ValueError as exc:
        issues.append(RuleIssue(IssueCode.WRONG_TYPE, str(exc), locator.value(("route",))))
    load = AlertingLoad(None, issues)
    if compiled is not None and not load.errors:
        load.config = AlertingConfig(name, spec, compiled)
    return load


def _check_references(spec: AlertingFileSpec, locator: Locator) -> list[RuleIssue]:
    issues: list[RuleIssue] = []
    seen: set[str] = set()
    for index, receiver in enumerate(spec.receivers):
        if receiver.name in seen:
            issues.append(
                RuleIssue(
                    IssueCode.DUPLICATE_NAME,
                    f"receiver {receiver.name!r} is defined twice",
                    locator.value(("receivers", index, "name")),
                    hint="give each receiver its own name",
                )
            )
        seen.add(receiver.name)
    if not spec.route.receiver:
        issues.append(
            RuleIssue(
                IssueCode.MISSING_FIELD,
                "the root route needs a `receiver` (the default for alerts no child route takes)",
                locator.key(("route",)),
                hint=f"add `receiver: {next(iter(seen))}`",
            )
        )
    for path, route in _walk(spec.route, ("route",)):
        if route.receiver and route.receiver not in seen:
            issues.append(
                RuleIssue(
                    IssueCode.UNKNOWN_NAME,
                    f"route sends to receiver {route.receiver!r}, which is not defined",
                    locator.value((*path, "receiver")),
                    hint=f"defined receivers: {', '.join(sorted(seen))}",
                )
            )
        for name, regex in route.match_re.items():
            try:
                import re

                re.compile(regex)
            except re.error as exc:
                issues.append(
                    RuleIssue(
                        IssueCode.WRONG_TYPE,
                        f"invalid regex for {name!r}: {exc}",
                        locator.value((*path, "match_re", name)),
                    )
                )
        for kind in ("active_time", "mute_time"):
            for index, window in enumerate(getattr(route, kind)):
                try:
                    from zoneinfo import ZoneInfo

                    ZoneInfo(window.timezone)
                except (KeyError, ValueError):
                    issues.append(
                        RuleIssue(
                            IssueCode.WRONG_TYPE,
                            f"unknown time zone {window.timezone!r}",
                            locator.value((*path, kind, index, "timezone")),
                            hint="use an IANA name like Europe/Berlin",
                        )
                    )
    return issues


def _walk(route: RouteSpec, path: Path_) -> list[tuple[Path_, RouteSpec]]:
    found = [(path, route)]
    for index, child in enumerate(route.routes):
        found.extend(_walk(child, (*path, "routes", index)))
    return found


def check_channels(
    spec: AlertingFileSpec, locator: Locator, env: Mapping[str, str], redactor: Redactor | None
) -> list[RuleIssue]:
    """Expand each channel's secrets and check its URL; unset secrets are warnings."""
    issues: list[RuleIssue] = []
    for r_index, receiver in enumerate(spec.receivers):
        for c_index, channel in enumerate(receiver.channel_specs()):
            path: Path_ = ("receivers", r_index, "channels", c_index)
            try:
                url = resolve_url(channel, env, redactor)
                resolve_secret(channel, env, redactor)
            except SecretError as exc:
                issues.append(
                    RuleIssue(
                        IssueCode.MISSING_FIELD,
                        f"receiver {receiver.name!r}: {exc}; this channel stays off until it is set",
                        locator.value(path),
                        hint="export the variable, or point `*_file` at a readable file",
                        severity="warning",
                    )
                )
                continue
            problem = url_problem(channel, url)
            if problem:
                shown = redactor.redact(problem) if redactor else problem
                issues.append(
                    RuleIssue(
                        IssueCode.WRONG_TYPE,
                        f"receiver {receiver.name!r}: {shown}",
                        locator.value(path),
                        hint="see docs/alerting.md for the channel URL forms",
                    )
                )
    return issues


def resolve_url(channel: ChannelSpec, env: Mapping[str, str], redactor: Redactor | None) -> str:
    """The channel's URL with `${VAR}` expanded, or read from `url_file`; raises SecretError."""
    if channel.url_file:
        return read_secret_file(expand(channel.url_file, env), redactor)
    if not channel.url:
        raise SecretError("the channel has neither `url` nor `url_file`")
    if variables_in(channel.url):
        return expand(channel.url, env, redactor)
    return channel.url


def resolve_secret(
    channel: ChannelSpec, env: Mapping[str, str], redactor: Redactor | None
) -> str | None:
    """The webhook signing key, if any; raises SecretError."""
    if channel.secret_file:
        return read_secret_file(expand(channel.secret_file, env), redactor)
    if channel.secret is None:
        return None
    value = expand(channel.secret, env, redactor)
    if redactor is not None:
        redactor.remember(value)
    return value


def url_problem(channel: ChannelSpec, url: str) -> str | None:
    """Why a resolved channel URL cannot work, or None."""
    kind = channel.kind()
    if kind == "console":
        return None
    if kind == "kafka":
        return (
            None
            if url.removeprefix("kafka://").strip("/")
            else "kafka:// needs a topic: kafka://TOPIC"
        )
    if kind == "webhook":
        return (
            None
            if url.startswith(("http://", "https://"))
            else f"a webhook URL must be http(s)://, got {url!r}"
        )
    if kind == "alertmanager":
        from monitor.alerts.channels.alertmanager import api_url

        try:
            api_url(url)
        except ValueError as exc:
            return str(exc)
        return None
    import apprise

    if apprise.Apprise.instantiate(url) is None:
        return f"not a URL Apprise understands: {url!r}"
    return None


def describe(value: Any) -> str:
    """A short printable form of a spec value for CLI output."""
    return str(value)
