"""The audit page's insights view (`/requests?view=insights`) through the real HTTP server, on
SQLite and PostgreSQL: its numbers against data with known answers, the same access rule as the
page (a visitor who may not see the page may not see the insights either: the same 4xx), and bad
query input answered with a 400, never a 5xx."""

from __future__ import annotations

import contextlib
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.audit_data import AUDITOR, CREDENTIALS, credentials
from tests.support.audit_html import parse_html
from tests.support.bot_under_test import BotUnderTest, make_settings, start_bot
from tests.support.fake_connect import FakeConnect
from tests.support.fake_slack import FakeSlack
from tests.support.insights_data import (
    DECIDED,
    EXPECTED_WEEKS,
    MEDIAN_SECONDS,
    OLDEST_WAITING,
    OLDEST_WAITING_SECONDS,
    P90_SECONDS,
    WAITING,
    insights_clock,
    seed_insights,
)
from tests.support.store_backends import BACKENDS, postgres_schema

SVG = "{http://www.w3.org/2000/svg}"
# Nothing seeded here may expire or be reminded while a test runs, however old.
QUIET_TIMERS = {"request_expiry_hours": 24 * 365, "reminder_after_hours": 24 * 365}
JSON = {**credentials(AUDITOR), "Accept": "application/json"}


@contextlib.asynccontextmanager
async def database(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'insights.db'}"
    else:
        async with postgres_schema() as url:
            yield url


@contextlib.asynccontextmanager
async def insights_bot_on(
    url: str, fake_slack: FakeSlack, fake_connect: FakeConnect, **overrides: Any
) -> AsyncIterator[BotUnderTest]:
    settings = make_settings(
        fake_slack,
        fake_connect,
        url,
        **{
            "trust_connect_credentials": True,
            "audit_users": [AUDITOR],
            "audit_allow_connect_admins": False,
            **QUIET_TIMERS,
            **overrides,
        },
    )
    bot = await start_bot(settings, fake_slack, fake_connect, clock=insights_clock)
    try:
        await seed_insights(bot.runtime.store)
        yield bot
    finally:
        await bot.stop()


@pytest.fixture(params=BACKENDS)
async def insights_bot(
    request: pytest.FixtureRequest, fake_slack: FakeSlack, fake_connect: FakeConnect, tmp_path
) -> AsyncIterator[BotUnderTest]:
    async with (
        database(request.param, tmp_path) as url,
        insights_bot_on(url, fake_slack, fake_connect) as bot,
    ):
        yield bot


@pytest.fixture
async def sqlite_insights_bot(
    fake_slack: FakeSlack, fake_connect: FakeConnect, database_url: str
) -> AsyncIterator[BotUnderTest]:
    async with insights_bot_on(database_url, fake_slack, fake_connect) as bot:
        yield bot


async def insights_json(bot: BotUnderTest, **params: str) -> dict[str, Any]:
    response = await bot.http.get("/requests", params={"view": "insights", **params}, headers=JSON)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["cache-control"] == "private, no-store"
    return response.json()


def counts_by_week(body: dict[str, Any]) -> dict[str, dict[str, int]]:
    return {
        week["week"]: {key: n for key, n in week["counts"].items() if n}
        for week in body["weeks"]
        if week["total"]
    }


# -- the numbers ---------------------------------------------------------------------------------


async def test_the_numbers_match_the_store(insights_bot: BotUnderTest) -> None:
    body = await insights_json(insights_bot)
    assert body["window"] == {
        "weeks": 12,
        "from": "2025-12-29T00:00:00Z",
        "until": "2026-03-18T12:00:00Z",
    }
    assert [week["week"] for week in body["weeks"]] == [f"2026-W{n:02d}" for n in range(1, 13)]
    assert counts_by_week(body) == EXPECTED_WEEKS
    for week in body["weeks"]:
        assert week["total"] == sum(week["counts"].values())
    assert body["time_to_decision"] == {
        "decided": DECIDED,
        "median_seconds": MEDIAN_SECONDS,
        "p90_seconds": P90_SECONDS,
    }
    assert body["waiting"] == {
        "count": WAITING,
        "oldest": {
            "id": OLDEST_WAITING,
            "username": "old_pending",
            "created_at": "2025-12-28T23:00:00Z",
            "waiting_seconds": OLDEST_WAITING_SECONDS,
        },
    }


async def test_the_weeks_parameter_narrows_the_window(insights_bot: BotUnderTest) -> None:
    body = await insights_json(insights_bot, weeks="2")
    assert [week["week"] for week in body["weeks"]] == ["2026-W11", "2026-W12"]
    assert counts_by_week(body) == {week: EXPECTED_WEEKS[week] for week in ("2026-W11", "2026-W12")}
    assert body["time_to_decision"] == {
        "decided": 5,
        "median_seconds": 8 * 3600,
        "p90_seconds": round(9.6 * 3600),
    }
    assert body["waiting"]["count"] == WAITING  # now, whatever the window


async def test_the_html_view_shows_the_same_numbers(insights_bot: BotUnderTest) -> None:
    response = await insights_bot.http.get(
        "/requests", params={"view": "insights"}, headers=credentials(AUDITOR)
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "script-src" not in response.headers["content-security-policy"]
    document = parse_html(response.text)
    assert document.find("span", id="median").text == "5 h 30 min"
    assert document.find("span", id="p90").text == "9 h 6 min"
    assert "over 10 requests filed in these weeks" in document.find("p", id="decided").text
    assert document.find("span", id="waiting-count").text == "3"
    oldest = document.find("p", id="oldest")
    assert oldest.find("strong").text == "old_pending"
    assert oldest.find("time").attrs["datetime"] == "2025-12-28T23:00:00Z"
    assert document.find("span", id="oldest-age").text == "79 d 13 h"

    # The chart, as drawn: one segment per (week, outcome), its count and its height.
    start = response.text.index("<svg")
    svg = ET.fromstring(response.text[start : response.text.index("</svg>") + len("</svg>")])
    drawn: dict[str, dict[str, int]] = {}
    unit_heights = set()
    for rect in svg.iter(f"{SVG}rect"):
        if rect.get("class") != "segment":
            continue
        count = int(rect.get("data-count") or 0)
        drawn.setdefault(rect.get("data-week") or "", {})[rect.get("data-outcome") or ""] = count
        unit_heights.add(round(float(rect.get("height") or 0) / count, 1))
    assert drawn == EXPECTED_WEEKS
    assert len(unit_heights) == 1

    # The table fallback repeats every number.
    header = [cell.text for cell in document.find("table").find("thead").find_all("th")]
    assert header[:2] == ["Week", "Days"] and header[-1] == "Total"
    keys = [cell.attrs["data-outcome"] for cell in document.find("thead").find_all("th")[2:-1]]
    for week, expected in EXPECTED_WEEKS.items():
        cells = [cell.text for cell in document.find("tr", data_week=week).find_all("td")]
        assert dict(zip(keys, map(int, cells[2:-1]), strict=True)) == {
            key: expected.get(key, 0) for key in keys
        }
        assert int(cells[-1]) == sum(expected.values())


async def test_the_audit_page_links_to_the_insights(sqlite_insights_bot: BotUnderTest) -> None:
    response = await sqlite_insights_bot.http.get("/requests", headers=credentials(AUDITOR))
    assert response.status_code == 200
    links = [a.attrs["href"] for a in parse_html(response.text).find_all("a")]
    assert "?view=insights" in links
    # The list itself is unchanged by the view parameter's default.
    listed = await sqlite_insights_bot.http.get("/requests", params={"view": ""}, headers=JSON)
    assert listed.status_code == 200 and listed.json()["total"] == 17


# -- who may see them ----------------------------------------------------------------------------


@pytest.mark.parametrize("params", [{}, {"weeks": "0"}, {"weeks": "x", "format": "csv"}])
@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Accept": "application/json"}, 401),
        (credentials("mallory", ["eng"]), 403),
        ({**credentials("mallory"), "Accept": "application/json"}, 403),
        ({CREDENTIALS: "{"}, 400),
    ],
)
async def test_whoever_may_not_see_the_page_may_not_see_the_insights(
    sqlite_insights_bot: BotUnderTest,
    headers: dict[str, str],
    status: int,
    params: dict[str, str],
) -> None:
    bot = sqlite_insights_bot
    # The page asked the same way (a format asked for is the format of the refusal too).
    page = await bot.http.get("/requests", params=params, headers=headers)
    insights = await bot.http.get(
        "/requests", params={"view": "insights", **params}, headers=headers
    )
    assert page.status_code == status
    # The same answer as the page, before any parameter is read: a stranger learns nothing.
    assert insights.status_code == status
    assert insights.text == page.text
    assert "old_pending" not in insights.text and "<svg" not in insights.text


async def test_no_insights_without_trusting_connect(
    fake_slack: FakeSlack, fake_connect: FakeConnect, database_url: str
) -> None:
    async with insights_bot_on(
        database_url, fake_slack, fake_connect, trust_connect_credentials=False
    ) as bot:
        response = await bot.http.get(
            "/requests", params={"view": "insights"}, headers=credentials(AUDITOR)
        )
        assert response.status_code == 404


# -- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"view": "charts"}, "unknown view 'charts'"),
        ({"view": ["insights", "insights"]}, "give view at most once"),
        ({"weeks": "0"}, "weeks must be a whole number from 1 to 26"),
        ({"weeks": "27"}, "weeks must be a whole number from 1 to 26"),
        ({"weeks": "-3"}, "weeks must be a whole number"),
        ({"weeks": "three"}, "weeks must be a whole number"),
        ({"weeks": "1" * 5000}, "weeks must be a whole number"),
        ({"weeks": "\u0663"}, "weeks must be a whole number"),
        ({"weeks": ["2", "3"]}, "give weeks at most once"),
        ({"weeks": "2\x00"}, "must not contain control characters"),
        ({"format": "csv"}, "the insights come as format html or json"),
        ({"format": "svg\x00"}, "must not contain control characters"),
        ({"other\x1b": "1"}, "must not contain control characters"),
    ],
)
async def test_bad_input_is_400_never_5xx(
    insights_bot: BotUnderTest, params: dict[str, Any], message: str
) -> None:
    base: dict[str, Any] = {"view": "insights"}
    for accept, media in (("application/json", "application/json"), ("text/html", "text/html")):
        response = await insights_bot.http.get(
            "/requests",
            params={**base, **params},
            headers={**credentials(AUDITOR), "Accept": accept},
        )
        assert response.status_code == 400, (accept, response.status_code, response.text)
        if params.get("format") == "csv":
            # Answered in the format asked for, as the page answers its own errors.
            assert response.headers["content-type"].startswith("text/plain")
            assert response.text == message + "\n"
            continue
        assert response.headers["content-type"].startswith(media)
        if media == "application/json":
            assert message in response.json()["error"]
        else:
            assert "<svg" not in response.text


async def test_unreadable_store_is_503(
    sqlite_insights_bot: BotUnderTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def unreachable(*args: object, **kwargs: object) -> None:
        raise OSError("database is gone")

    monkeypatch.setattr("bot.web.visitors.request_insights", unreachable)
    response = await sqlite_insights_bot.http.get(
        "/requests", params={"view": "insights"}, headers=JSON
    )
    assert response.status_code == 503
    assert response.json() == {"error": "The request history cannot be read right now."}
