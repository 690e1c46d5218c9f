"""The conflict board in a real browser: Debian's Chromium, headless, driven by Playwright, on a
worker and a notifier on the embedded broker. One scenario covers the board's promises: the
conflicts appear with their timeline, a filter narrows them (and lives in the URL), a silence
created from the page mutes the next matching alert, and a resolve moves a conflict to the
resolved list without a reload. A screenshot is saved (`CXMON_BOARD_SCREENSHOT=docs/board.png`
writes the README's)."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright
from pytest_httpserver import HTTPServer

from monitor.events import Event
from tests.integration.harness import Deployment, publish
from tests.integration.test_every_kind import RULES, scenario
from tests.integration.test_notifier import (
    Recorder,
    fingerprints,
    metric,
    notifier,
    one_webhook,
    wait_for,
)

pytestmark = pytest.mark.integration
TOKEN = "board-token-for-the-browser-test"  # noqa: S105 - a test token
CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 30_000


@pytest.fixture
def browser() -> Iterator[Browser]:
    """Debian's Chromium (Playwright's own download cannot work offline); closed on exit."""
    assert shutil.which("chromium"), "install Debian's `chromium` package (.ci/run does)"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield launched
        finally:
            launched.close()


def event(customer: str, ago: timedelta, source: str, type_: str, **data: object) -> Event:
    now = datetime.now(UTC)
    return Event(
        id=f"board-{customer}-{type_}",
        source=source,
        type=type_,
        time=now - ago,
        subject=customer,
        data=dict(data),
    )


def card(page: Page, where: str, customer: str) -> Locator:
    return page.locator(f"{where} article.conflict", has_text=customer)


def test_the_board_shows_filters_silences_and_resolves_live(
    deployment: Deployment, httpserver: HTTPServer, browser: Browser
) -> None:
    team = Recorder()
    alerting = one_webhook(httpserver, "team", team)
    with (
        deployment.worker(RULES, wait=False) as worker,
        notifier(deployment, alerting, CXMON_BOARD_TOKEN=TOKEN) as (proc, _),
    ):
        worker.wait_ready()  # started with the notifier: their start-ups overlap
        publish(deployment, *scenario(datetime.now(UTC)))
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        page.goto(f"http://127.0.0.1:{proc.metrics_port}/")
        page.evaluate("window.__sameDocument = true")

        # The scenario's ten conflicts appear, grouped by gap, each with its timeline.
        expect(page.locator("#open article.conflict")).to_have_count(10, timeout=60_000)
        waived = page.locator("#open article.conflict", has_text="customer waived")
        expect(waived.locator("ol.timeline li")).to_have_count(2)
        expect(waived.locator("ol.timeline")).to_contain_text("fee.waiver_promised")
        expect(waived.locator("ol.timeline")).to_contain_text("invoice.charged")
        expect(page.locator("section.gap h3", has_text="support")).not_to_have_count(0)
        expect(page.locator("#status-text")).to_contain_text("caught up", timeout=WAIT_MS)

        # A filter narrows the list and lives in the URL.
        page.select_option("#f-gap", "support>billing")
        expect(page).to_have_url(f"http://127.0.0.1:{proc.metrics_port}/?gap=support%3Ebilling")
        expect(page.locator("#open section.gap")).to_have_count(1)  # one gap left, of several
        expect(page.locator("#open section.gap h3")).to_have_text(re.compile(r"^support→billing"))
        expect(page.locator("#open")).to_contain_text("customer waived")
        narrowed = page.locator("#open article.conflict").count()
        assert 0 < narrowed < 10
        expect(page.locator("#open-count")).to_have_text(f"({narrowed} of 10)")
        page.click("#f-clear")
        expect(page.locator("#open article.conflict")).to_have_count(10)

        # A silence made from the conflict's card (matchers pre-filled) mutes the next one.
        waived.get_by_role("button", name="Silence").click()
        expect(page.locator("#s-comment")).to_be_focused()  # a modal dialog, ready to type
        matchers = page.locator("#s-matchers").input_value().splitlines()
        assert matchers == [
            "rule=billing-charges-waived-fee",
            "from_department=support",
            "to_department=billing",
        ]
        page.fill("#s-comment", "INC-42: fee run is being fixed")
        page.fill("#s-author", "dana")
        page.fill("#s-token", TOKEN)
        page.click("#s-submit")
        expect(page.locator("#silence-dialog")).not_to_be_visible()
        expect(page.locator("#silences li[data-silence]")).to_have_count(1)
        expect(waived.locator(".badge.muted")).to_have_text("silenced")
        wait_for(lambda: metric(proc, "cxmon_silences_active") == 1, "the silence", proc)
        delivered_before = len(fingerprints(team))
        publish(
            deployment,
            event(
                "waived-again",
                timedelta(hours=2),
                "support",
                "fee.waiver_promised",
                fee_code="late_fee",
            ),
            event(
                "waived-again",
                timedelta(hours=1),
                "billing",
                "invoice.charged",
                fee_code="late_fee",
                amount=30,
            ),
        )
        again = card(page, "#open", "waived-again")
        expect(again).to_have_count(1, timeout=WAIT_MS)
        expect(again.locator(".badge.muted")).to_have_text("silenced")
        wait_for(
            lambda: metric(proc, "cxmon_alerts_silenced_total") == 1, "the alert silenced", proc
        )

        # A late kickoff resolves the stalled handoff: it moves to the resolved list, live.
        publish(
            deployment,
            event("stalled-deal", timedelta(0), "onboarding", "kickoff.held", deal_id="D-1"),
        )
        resolved = card(page, "#resolved", "stalled-deal")
        expect(resolved).to_have_count(1, timeout=WAIT_MS)
        expect(resolved.locator(".badge.resolution")).to_have_text("late follow-up")
        expect(card(page, "#open", "stalled-deal")).to_have_count(0)
        expect(page.locator("#open article.conflict")).to_have_count(10)  # 10 + again - resolved
        assert page.evaluate("window.__sameDocument") is True  # no reload happened

        shot = deployment.workdir / "board.png"
        page.screenshot(path=str(shot), full_page=True)
        if target := os.environ.get("CXMON_BOARD_SCREENSHOT"):
            shutil.copyfile(shot, Path(target))
        delivered = fingerprints(team)
        worker_log = worker.log()
    assert shot.stat().st_size > 10_000
    # Everything but the silenced alert reached the team: 10 firing, then the resolve.
    assert len(delivered) == delivered_before + 1, (delivered, worker_log)
