"""Hot reload in a running worker: good rule files replace the old ones, bad ones never do."""

from __future__ import annotations

import re
import shutil
import signal
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.events import Event
from tests.integration.harness import Deployment, WorkerProcess, publish, waiver_and_charge

pytestmark = pytest.mark.integration
RULES = Path(__file__).resolve().parents[2] / "rules"


def _waiver_and_charge(customer: str, fee: str = "late_fee") -> tuple[Event, Event]:
    waived_at = datetime.now(UTC) - timedelta(minutes=2)
    return waiver_and_charge(customer, waived_at, after=timedelta(minutes=1), fee=fee, amount=10)


def _metric(worker: WorkerProcess, name: str, labels: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{worker.metrics_port}/metrics") as response:
        text = response.read().decode()
    found = re.search(rf"^{name}\{{{labels}\}} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def _await_metric(worker: WorkerProcess, name: str, labels: str, value: float) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if _metric(worker, name, labels) >= value:
                return
        except OSError:  # a busy worker's metrics server may reset a connection; ask again
            assert worker.process.poll() is None, f"the worker exited:\n{worker.log()}"
        time.sleep(0.2)
    raise AssertionError(f"{name}{{{labels}}} did not reach {value}:\n{worker.log()}")


def test_broken_rule_file_is_rejected_and_running_rules_keep_working(
    deployment: Deployment, tmp_path: Path
) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    with deployment.worker(rules, CXMON_RELOAD_INTERVAL_S="0.5") as worker:
        (rules / "billing.yaml").write_text(
            (rules / "billing.yaml").read_text().replace("within: 30d", "within: 30 days")
        )
        _await_metric(worker, "cxmon_rule_reloads_total", 'outcome="failure"', 1)
        publish(deployment, *_waiver_and_charge("cust-after-bad-edit"))
        alerts = deployment.alerts(expect=1)
    assert [(a["rule_id"], a["key"]) for a in alerts] == [
        ("billing-charges-waived-fee", "cust-after-bad-edit")
    ]
    assert "RULE_DURATION" in worker.log()


def test_sighup_loads_a_new_rule(deployment: Deployment, tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    with deployment.worker(rules, CXMON_RELOAD_INTERVAL_S="0") as worker:
        (rules / "setup.yaml").write_text(
            "version: 1\n"
            "rules:\n"
            "  - id: setup-fee-charged-after-waiver\n"
            "    title: Setup fee charged after a waiver\n"
            "    kind: contradiction\n"
            "    severity: low\n"
            "    owners: [support, billing]\n"
            "    first: {source: support, type: fee.waiver_promised}\n"
            "    then: {source: billing, type: invoice.charged, where: \"then.data.fee_code == 'setup_fee'\"}\n"
            "    within: 1d\n"
        )
        worker.process.send_signal(signal.SIGHUP)
        _await_metric(worker, "cxmon_rule_reloads_total", 'outcome="success"', 2)
        publish(deployment, *_waiver_and_charge("cust-setup", fee="setup_fee"))
        alerts = deployment.alerts(expect=2)
    assert sorted(a["rule_id"] for a in alerts) == [
        "billing-charges-waived-fee",
        "setup-fee-charged-after-waiver",
    ]


BAD_RULES = Path(__file__).resolve().parents[1] / "unit" / "bad_rules"


def test_every_class_of_mistake_is_a_failed_reload_and_the_old_rules_keep_alerting(
    deployment: Deployment, tmp_path: Path
) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    # warnings (an unused list, a condition that is always false) load: they are not mistakes
    mistakes = [p for p in sorted(BAD_RULES.iterdir()) if not _is_warning(p)]
    assert len(mistakes) >= 20  # one per issue code the validator knows, and then some
    # SIGHUP, not the file watcher, so each step is exactly one reload of exactly its files
    with deployment.worker(rules, CXMON_RELOAD_INTERVAL_S="0") as worker:
        for count, mistake in enumerate(mistakes, start=1):
            for old in rules.glob("zz-*.yaml"):
                old.unlink()
            for index, source in enumerate(
                sorted(mistake.glob("*.yaml")) if mistake.is_dir() else [mistake]
            ):
                (rules / f"zz-{index}.yaml").write_text(source.read_text())
            worker.process.send_signal(signal.SIGHUP)
            _await_metric(worker, "cxmon_rule_reloads_total", 'outcome="failure"', count)
            assert worker.process.poll() is None, f"{mistake.name} stopped the worker"
        publish(deployment, *_waiver_and_charge("cust-after-every-mistake"))
        alerts = deployment.alerts(expect=1)
        assert _metric(worker, "cxmon_rule_reloads_total", 'outcome="success"') == 1
        assert worker.process.poll() is None
    assert [(a["rule_id"], a["key"]) for a in alerts] == [
        ("billing-charges-waived-fee", "cust-after-every-mistake")
    ]
    assert "We experienced a crash" not in worker.log()


def _is_warning(case: Path) -> bool:
    files = sorted(case.glob("*.yaml")) if case.is_dir() else [case]
    first_lines = [f.read_text().splitlines()[0] for f in files]
    return any(line.endswith(("UNUSED_NAME", "NEVER_FIRES")) for line in first_lines)
