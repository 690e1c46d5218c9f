"""Render cxmon's alert rules for your Prometheus: your selectors and your runbook address.

    python deploy/prometheus/render.py --worker 'namespace="cx",service="cxmon-worker"' \\
        --notifier 'namespace="cx",service="cxmon-notifier"' \\
        --runbooks https://docs.example.org/cxmon/runbooks.md > cxmon.rules.yml

The shipped `rules/cxmon.rules.yml` is the rendering with the defaults below (the job names of
`prometheus.yml`); it is the one promtool tests. Under Kubernetes annotation-based discovery
every target is in the discovery job, so select the workers and notifiers by the labels your
relabelling keeps (namespace, service, pod labels), the way monitoring mixins take a selector.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RULES = HERE / "rules" / "cxmon.rules.yml"
WORKER = 'job="cxmon-worker"'
NOTIFIER = 'job="cxmon-notifier"'
RUNBOOKS = "https://cxmon.example.com/docs/runbooks.md"
MATCHER = re.compile(r'^\s*[a-zA-Z_][a-zA-Z0-9_]*\s*(=|!=|=~|!~)\s*"[^"]*"\s*$')


def _check_selector(selector: str) -> str:
    """A comma-separated list of label matchers, as inside `{...}`."""
    parts = [part for part in selector.split(",") if part.strip()]
    if not parts or not all(MATCHER.match(part) for part in parts):
        raise ValueError(
            f'expected label matchers like namespace="cx",service="x", got {selector!r}'
        )
    return ",".join(part.strip() for part in parts)


def render(
    worker: str = WORKER, notifier: str = NOTIFIER, runbooks: str = RUNBOOKS, text: str = ""
) -> str:
    """The rules file with these selectors and this runbook page."""
    text = text or RULES.read_text(encoding="utf-8")
    text = text.replace(WORKER, _check_selector(worker))
    text = text.replace(NOTIFIER, _check_selector(notifier))
    return text.replace(f'"{RUNBOOKS}#', f'"{runbooks}#')


def main(argv: list[str]) -> int:
    """Print the rendered rules file."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--worker", default=WORKER, help=f"worker selector (default: {WORKER})")
    parser.add_argument("--notifier", default=NOTIFIER, help=f"notifier selector ({NOTIFIER})")
    parser.add_argument("--runbooks", default=RUNBOOKS, help="where docs/runbooks.md is served")
    args = parser.parse_args(argv)
    try:
        sys.stdout.write(render(args.worker, args.notifier, args.runbooks))
    except ValueError as exc:
        parser.error(str(exc))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
