"""alerting.yaml at the rule validator's level: every mistake in one run, each with a hint for
its own section and a did-you-mean, and a bad regex an issue, not a crash."""

from __future__ import annotations

from pathlib import Path

from monitor.alerts.loader import load_alerting
from monitor.errors import IssueCode

MISTAKES = """\
version: 1
receivers:
  - name: console
    channels: [console://]
route:
  receiver: console
  group_wiat: 10s
  routes:
    - match_re: {rule: "billing-(["}
      receiver: consol
    - match: {severity: high}
      receiver: console
      zzzz: true
"""


def test_every_mistake_is_reported_in_one_run_in_file_order(tmp_path: Path) -> None:
    path = tmp_path / "alerting.yaml"
    path.write_text(MISTAKES)
    loaded = load_alerting(path, {})
    assert loaded.config is None
    assert [(i.location.line, i.location.col, i.code) for i in loaded.issues] == [
        (7, 3, IssueCode.UNKNOWN_FIELD),
        (9, 24, IssueCode.WRONG_TYPE),
        (10, 17, IssueCode.UNKNOWN_NAME),
        (13, 7, IssueCode.UNKNOWN_FIELD),
    ]
    hints = [i.hint or "" for i in loaded.issues]
    assert hints[0] == "did you mean 'group_wait'?"
    assert "regular expression" in hints[1]
    assert hints[2] == "did you mean 'console'?"
    assert hints[3].startswith("known fields: active_time, continue, group_by")  # a route's
    assert "unterminated character set" in loaded.issues[1].message
