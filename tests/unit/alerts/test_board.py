"""The conflict board without a broker: its state from alerts, filters, redaction, and the HTTP
API's ETag, read-only mode and token check (through the real WSGI server)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from monitor.alerts.board.api import BoardApp
from monitor.alerts.board.state import BoardState, Filters
from monitor.alerts.config import RedactSpec
from monitor.alerts.redact import Redaction, pseudonym
from monitor.alerts.silences import Silence, SilenceBook
from monitor.httpserver import Health, RunningServer, serve
from tests.unit.alerts.conftest import T0, make_alert

NOW = T0 + timedelta(hours=1)
TOKEN = "board-token-for-tests"  # noqa: S105 - a test token


def board(**kwargs: Any) -> BoardState:
    return BoardState(clock=lambda: NOW, **kwargs)


def test_a_resolve_moves_the_conflict_to_resolved_with_how() -> None:
    state = board()
    state.ingest(make_alert(1))
    state.ingest(make_alert(2, rule="handoff", owners=("sales", "onboarding")))
    resolved = make_alert(1, status="resolved").model_copy(
        update={"note": "remediated", "message": "Resolved: billing sent refund.issued"}
    )
    state.ingest(resolved)
    state.ingest(make_alert(1))  # a restarted worker writing the firing alert again
    view = state.view(Filters(), [], NOW)
    assert [c["fingerprint"] for c in view["open"]] == ["fp0002"]
    (closed,) = view["resolved"]
    assert (closed["fingerprint"], closed["status"], closed["resolution"]) == (
        "fp0001",
        "resolved",
        "remediated",
    )
    assert closed["resolution_note"] == "Resolved: billing sent refund.issued"


def test_filters_narrow_and_facets_list_every_value() -> None:
    state = board()
    state.ingest(make_alert(1, severity="high"))
    state.ingest(make_alert(2, severity="low", rule="handoff", owners=("sales", "onboarding")))
    state.ingest(make_alert(3, severity="critical", rule="handoff", owners=("sales", "onboarding")))

    def shown(**query: str) -> list[str]:
        filters = Filters.from_query({k: [v] for k, v in query.items()})
        return sorted(c["key"] for c in state.view(filters, [], NOW)["open"])

    assert shown(owner="support") == ["cust-00001"]
    assert len(shown(owner="billing")) == 3  # every fixture alert has the label team=billing
    assert shown(gap="sales>onboarding") == ["cust-00002", "cust-00003"]
    assert shown(severity="critical,high") == ["cust-00001", "cust-00003"]
    assert shown(rule="handoff", q="CUST-00002") == ["cust-00002"]
    assert shown(q="nothing like this") == []
    facets = state.view(Filters(), [], NOW)["facets"]
    assert facets["severities"] == ["critical", "high", "low"]
    assert facets["gaps"] == ["sales>onboarding", "support>billing"]


def test_open_conflicts_expire_and_old_resolved_ones_go() -> None:
    state = board(expire_after=timedelta(days=7), keep_resolved=timedelta(days=1))
    state.ingest(make_alert(1))
    later = T0 + timedelta(days=7, seconds=5)
    view = state.view(Filters(), [], later)
    assert view["open"] == [] and view["resolved"][0]["resolution"] == "expired"
    assert state.view(Filters(), [], later + timedelta(days=1))["resolved"] == []


def test_redaction_hides_the_key_from_the_board_and_its_search() -> None:
    state = board(redaction=Redaction.from_spec(RedactSpec(hash=["key"])))
    state.ingest(make_alert(1))
    (shown,) = state.view(Filters(), [], NOW)["open"]
    assert shown["key"] == pseudonym("cust-00001")
    assert "cust-00001" not in json.dumps(shown)
    assert state.view(Filters(text="cust-00001"), [], NOW)["open"] == []


def test_a_matching_silence_is_named_on_the_conflict() -> None:
    state = board()
    state.ingest(make_alert(1))
    silence = Silence(
        id="s1",
        matchers=["rule=billing-charges-waived-fee"],
        starts_at=T0,
        ends_at=NOW + timedelta(hours=1),
    )
    (shown,) = state.view(Filters(), [silence], NOW)["open"]
    assert shown["silenced_by"] == "s1"


@pytest.fixture
def server() -> Iterator[tuple[RunningServer, BoardApp, list[Silence]]]:
    state = board()
    state.ingest(make_alert(1))
    written: list[Silence] = []

    def write(silence: Silence) -> None:
        written.append(silence)

    app = BoardApp(state, SilenceBook(), token=TOKEN, writer=write, now=lambda: NOW)
    app.caught_up = lambda: True
    running = serve("127.0.0.1", 0, CollectorRegistry(), Health(), app)
    try:
        yield running, app, written
    finally:
        running.close()


def call(
    running: RunningServer, path: str, method: str = "GET", body: Any = None, **headers: str
) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{running.port}{path}",
        data=json.dumps(body).encode() if body is not None else None,
        headers=headers,
        method=method,
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_conflicts_answer_304_until_something_changes(server: Any) -> None:
    running, app, _ = server
    status, headers, body = call(running, "/api/v1/conflicts")
    assert status == 200 and json.loads(body)["open"][0]["key"] == "cust-00001"
    etag = headers["ETag"]
    assert call(running, "/api/v1/conflicts", **{"If-None-Match": etag})[0] == 304
    assert call(running, "/api/v1/conflicts?severity=low", **{"If-None-Match": etag})[0] == 200
    app.state.ingest(make_alert(2))
    assert call(running, "/api/v1/conflicts", **{"If-None-Match": etag})[0] == 200


def test_writes_need_the_token_and_valid_silences(server: Any) -> None:
    running, app, written = server
    silence = {
        "matchers": ["rule=billing-charges-waived-fee"],
        "duration": "2h",
        "comment": "INC-42",
        "created_by": "dana",
    }
    assert call(running, "/api/v1/silences", "POST", silence)[0] == 401
    wrong = {"Authorization": "Bearer nope"}
    assert call(running, "/api/v1/silences", "POST", silence, **wrong)[0] == 401
    auth = {"Authorization": f"Bearer {TOKEN}"}
    bad = {**silence, "matchers": ["rule=~("]}
    assert call(running, "/api/v1/silences", "POST", bad, **auth)[0] == 400
    assert call(running, "/api/v1/silences", "POST", {**silence, "comment": ""}, **auth)[0] == 400
    status, _, body = call(running, "/api/v1/silences", "POST", silence, **auth)
    assert status == 201 and [s.matchers for s in written] == [silence["matchers"]]
    assert json.loads(body)["id"] == written[0].id
    assert written[0].ends_at - written[0].starts_at == timedelta(hours=2)
    app.silences.upsert(written[0])
    status, _, _ = call(running, f"/api/v1/silences/{written[0].id}", "DELETE", **auth)
    assert status == 200 and written[1].ends_at == NOW
    assert call(running, "/api/v1/silences/unknown", "DELETE", **auth)[0] == 404
    app.token = None
    assert call(running, "/api/v1/silences", "POST", silence, **auth)[0] == 403


def test_the_page_is_self_contained_with_a_strict_policy(server: Any) -> None:
    running, _, _ = server
    status, headers, body = call(running, "/")
    page = body.decode()
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    policy = headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy
    nonce = policy.split("'nonce-")[1].split("'")[0]
    assert page.count(f'nonce="{nonce}"') == 2 and "{{nonce}}" not in page
    assert "http://" not in page and "https://" not in page  # nothing fetched from elsewhere
    assert call(running, "/metrics")[0] == 200 and call(running, "/nope")[0] == 404


def test_only_ip_addresses_localhost_and_listed_names_are_answered(server: Any) -> None:
    running, app, _ = server
    assert call(running, "/api/v1/conflicts", Host=f"localhost:{running.port}")[0] == 200
    assert call(running, "/api/v1/conflicts", Host="[::1]:9465")[0] == 200
    rebound = call(running, "/api/v1/conflicts", Host="attacker.example:9465")
    assert rebound[0] == 421 and b"CXMON_BOARD_HOSTS" in rebound[2]
    app.hosts = frozenset({"board.example.com"})
    assert call(running, "/", Host="board.example.com")[0] == 200
    assert call(running, "/metrics", Host="attacker.example")[0] == 200  # not the board's


def test_an_answer_holds_the_newest_conflicts_up_to_the_limit_and_counts_the_rest() -> None:
    state = board()
    for n in range(1, 8):
        state.ingest(make_alert(n).model_copy(update={"event_time": T0 + timedelta(minutes=n)}))
    view = state.view(Filters(), [], NOW, limit=3)
    assert [c["key"] for c in view["open"]] == ["cust-00007", "cust-00006", "cust-00005"]
    assert (view["matched_open"], view["total_open"]) == (7, 7)
