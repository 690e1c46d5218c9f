"""Read `alerting.yaml`: YAML -> `AlertingFileSpec` + compiled route tree, every issue with file:line:col.

Raises only OSError. Unset `${VAR}`s are warnings (the receiver's channel stays off until the
variable is set), so a fresh checkout validates and runs with the console receiver alone.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from monitor.alerts.config import AlertingFileSpec, ChannelSpec, RouteSpec
from monitor.alerts.dispatch.route import Route, compile_routes
from monitor.alerts.secrets import Redactor, SecretError, expand, read_secret_file, variables_in
from monitor.config import load
from monitor.config.locate import Locator, to_plain
from monitor.errors import ConfigIssue, IssueCode

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
    issues: list[ConfigIssue] = field(default_factory=list)

    @property
    def errors(self) -> list[ConfigIssue]:
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
    loaded = load(path, AlertingFileSpec)
    spec, locator = loaded.spec, loaded.locator
    if locator is None:
        return AlertingLoad(None, loaded.issues)
    if spec is None:
        # One run reports everything: with the misspelled keys left out, the rest of the file
        # is still checked (receivers, regexes, channels); the file stays unusable.
        lenient = _without_unknown_fields(to_plain(locator.root))
        if lenient is None:
            return AlertingLoad(None, loaded.issues)
        found = loaded.issues + _semantic_issues(lenient, locator, env, redactor)[1]
        return AlertingLoad(None, sorted(found, key=lambda i: i.location))
    compiled, issues = _semantic_issues(spec, locator, env, redactor)
    result = AlertingLoad(None, sorted(issues, key=lambda i: i.location))
    if compiled is not None and not result.errors:
        result.config = AlertingConfig(loaded.file, spec, compiled)
    return result


def _semantic_issues(
    spec: AlertingFileSpec, locator: Locator, env: Mapping[str, str], redactor: Redactor | None
) -> tuple[Route | None, list[ConfigIssue]]:
    issues = _check_references(spec, locator)
    issues.extend(check_channels(spec, locator, env, redactor))
    compiled, found = compile_routes(spec.route, locator)
    return compiled, issues + found


def _without_unknown_fields(data: Any, rounds: int = 5) -> AlertingFileSpec | None:
    """The file as a spec with every unknown key dropped, or None if more than those is wrong."""
    for _ in range(rounds):
        try:
            return AlertingFileSpec.model_validate(data)
        except ValidationError as exc:
            unknown = [e["loc"] for e in exc.errors() if e["type"] == "extra_forbidden"]
            if len(unknown) < len(exc.errors()):
                return None
            for loc in unknown:
                node = data
                for part in loc[:-1]:
                    node = node[part]
                node.pop(loc[-1], None)
    return None


def _check_references(spec: AlertingFileSpec, locator: Locator) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []
    seen: set[str] = set()
    for index, receiver in enumerate(spec.receivers):
        if receiver.name in seen:
            issues.append(
                ConfigIssue(
                    IssueCode.DUPLICATE_NAME,
                    f"receiver {receiver.name!r} is defined twice",
                    locator.value(("receivers", index, "name")),
                    hint="give each receiver its own name",
                )
            )
        seen.add(receiver.name)
    if not spec.route.receiver:
        issues.append(
            ConfigIssue(
                IssueCode.MISSING_FIELD,
                "the root route needs a `receiver` (the default for alerts no child route takes)",
                locator.key(("route",)),
                hint=f"add `receiver: {next(iter(seen))}`",
            )
        )
    for at, route in _walk(spec.route, ("route",)):
        if route.receiver and route.receiver not in seen:
            issues.append(
                ConfigIssue(
                    IssueCode.UNKNOWN_NAME,
                    f"route sends to receiver {route.receiver!r}, which is not defined",
                    locator.value((*at, "receiver")),
                    hint=_did_you_mean(route.receiver, sorted(seen), "defined receivers"),
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
) -> list[ConfigIssue]:
    """Expand each channel's secrets and check its URL; unset secrets are warnings."""
    issues: list[ConfigIssue] = []
    for r_index, receiver in enumerate(spec.receivers):
        for c_index, channel in enumerate(receiver.channel_specs()):
            path: Path_ = ("receivers", r_index, "channels", c_index)
            try:
                url = resolve_url(channel, env, redactor)
                resolve_secret(channel, env, redactor)
            except SecretError as exc:
                issues.append(
                    ConfigIssue(
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
                    ConfigIssue(
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


def _did_you_mean(name: str, known: list[str], what: str) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    return f"did you mean '{close[0]}'?" if close else f"{what}: {', '.join(known)}"
