"""The insights view in a real headless browser: Debian's chromium driven by Playwright, with
JavaScript off (the view must not need it), as in tests/e2e/test_audit_browser.py, whose browser
fixture this uses (no browser is ever downloaded).

What is checked is what Chromium lays out: each bar segment's rendered height is proportional to
the number of requests it stands for, and the figures read as the seeded data says.

The README's screenshot comes from here:
`UPDATE_SCREENSHOTS=1 pytest tests/e2e/test_insights_browser.py` rewrites docs/insights.png from
a plausible quarter of sample requests. Ordinary runs write theirs to the test's temporary
directory, so running the suite never dirties the working tree.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.e2e import test_audit_browser
from tests.support.audit_data import AUDITOR, credentials
from tests.support.bot_under_test import BotUnderTest, make_settings, start_bot
from tests.support.fake_connect import FakeConnect
from tests.support.fake_slack import FakeSlack
from tests.support.insights_data import (
    EXPECTED_WEEKS,
    NOW,
    insights_clock,
    seed_insights,
    seed_spread,
)

# Chromium, never downloaded (assigned, so test parameters of this name are not redefinitions).
browser = test_audit_browser.browser
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "insights.png"
QUIET_TIMERS = {"request_expiry_hours": 24 * 365, "reminder_after_hours": 24 * 365}


async def start(
    fake_slack: FakeSlack, fake_connect: FakeConnect, database_url: str
) -> BotUnderTest:
    settings = make_settings(
        fake_slack,
        fake_connect,
        database_url,
        trust_connect_credentials=True,
        audit_users=[AUDITOR],
        audit_allow_connect_admins=False,
        **QUIET_TIMERS,
    )
    return await start_bot(settings, fake_slack, fake_connect, clock=insights_clock)


@pytest.fixture
async def insights_bot(
    fake_slack: FakeSlack, fake_connect: FakeConnect, database_url: str
) -> AsyncIterator[BotUnderTest]:
    bot = await start(fake_slack, fake_connect, database_url)
    try:
        await seed_insights(bot.runtime.store)
        yield bot
    finally:
        await bot.stop()


async def drawn_segments(page: Any) -> list[dict[str, Any]]:
    """Every bar segment as Chromium laid it out: its week, outcome, count and height in px."""
    return await page.eval_on_selector_all(
        "svg.insights-chart rect.segment",
        """rects => rects.map(rect => ({
            week: rect.dataset.week,
            outcome: rect.dataset.outcome,
            count: Number(rect.dataset.count),
            height: rect.getBoundingClientRect().height,
            top: rect.getBoundingClientRect().top,
            bottom: rect.getBoundingClientRect().bottom,
        }))""",
    )


async def test_insights_in_a_browser(browser: Any, insights_bot: BotUnderTest) -> None:
    context = await browser.new_context(
        extra_http_headers=credentials(AUDITOR),
        viewport={"width": 1200, "height": 900},
        java_script_enabled=False,
    )
    page = await context.new_page()
    response = await page.goto(f"{insights_bot.base_url}/requests")
    assert response is not None and response.status == 200
    # From the audit page, by its link: relative, so it works under Connect's path prefix too.
    await page.click("text=Insights")
    assert parse_qs(urlsplit(page.url).query) == {"view": ["insights"]}
    assert await page.title() == "Insights · Account requests · connect-user-bot"

    assert await page.inner_text("#median") == "5 h 30 min"
    assert await page.inner_text("#p90") == "9 h 6 min"
    assert await page.inner_text("#waiting-count") == "3"
    assert await page.inner_text("#oldest-age") == "79 d 13 h"
    assert "old_pending" in await page.inner_text("#oldest")

    # Bar heights as laid out: one scale for every segment, and the counts the store holds.
    segments = await drawn_segments(page)
    drawn: dict[str, dict[str, int]] = {}
    for segment in segments:
        drawn.setdefault(segment["week"], {})[segment["outcome"]] = segment["count"]
    assert drawn == EXPECTED_WEEKS
    per_request = [segment["height"] / segment["count"] for segment in segments]
    assert max(per_request) - min(per_request) < 0.05
    assert per_request[0] > 10  # visibly tall: the chart is not squashed
    # The busiest week (7 requests) is 7 units tall, stacked without gaps.
    busiest = [segment for segment in segments if segment["week"] == "2026-W11"]
    top = min(segment["top"] for segment in busiest)
    bottom = max(segment["bottom"] for segment in busiest)
    assert bottom - top == pytest.approx(7 * per_request[0], abs=0.5)

    # Readable without a script: the totals, the week labels and the legend are text.
    totals = await page.eval_on_selector_all(
        "svg.insights-chart text.total", "texts => texts.map(t => t.textContent)"
    )
    assert totals == ["1", "0", "0", "0", "0", "0", "0", "0", "2", "3", "7", "2"]
    legend = await page.eval_on_selector_all(
        "svg.insights-chart .legend-item", "items => items.map(i => i.textContent)"
    )
    assert legend[0] == "Approved" and "Waiting" in legend
    titles = await page.eval_on_selector_all(
        "svg.insights-chart g.bar > title", "titles => titles.map(t => t.textContent)"
    )
    assert titles[10] == (
        "Week 2026-W11 (9 Mar to 15 Mar 2026): 2 approved, 1 incomplete, 2 denied, 1 expired, "
        "1 cancelled"
    )
    row = await page.inner_text("tr[data-week='2026-W11']")
    assert row.split("\t")[-1].strip() == "7"

    # A narrower window through the form: two weeks, two bars.
    await page.fill("input[name=weeks]", "2")
    await page.click("button[type=submit]")
    assert parse_qs(urlsplit(page.url).query) == {"view": ["insights"], "weeks": ["2"]}
    weeks = await page.eval_on_selector_all(
        "svg.insights-chart g.bar", "bars => bars.map(b => b.dataset.week)"
    )
    assert weeks == ["2026-W11", "2026-W12"]

    # Bad input is a page saying what to type, not a failure.
    response = await page.goto(f"{insights_bot.base_url}/requests?view=insights&weeks=99")
    assert response is not None and response.status == 400
    assert "weeks must be a whole number from 1 to 26" in await page.inner_text("main")

    # And back to the list.
    await page.goto(f"{insights_bot.base_url}/requests?view=insights")
    await page.click("text=← All requests")
    assert urlsplit(page.url).query == ""
    assert await page.inner_text("#total") == "17 requests"
    await context.close()


async def test_a_visitor_not_on_the_list_sees_no_insights(
    browser: Any, insights_bot: BotUnderTest
) -> None:
    for headers, status in ((credentials("mallory"), 403), ({}, 401)):
        context = await browser.new_context(extra_http_headers=headers)
        page = await context.new_page()
        for path in ("/requests", "/requests?view=insights", "/requests?view=insights&weeks=0"):
            response = await page.goto(f"{insights_bot.base_url}{path}")
            assert response is not None and response.status == status, path
            assert await page.query_selector("svg") is None
            assert "old_pending" not in await page.content()
        await context.close()


async def test_the_readme_screenshot(
    browser: Any,
    fake_slack: FakeSlack,
    fake_connect: FakeConnect,
    database_url: str,
    tmp_path: Path,
) -> None:
    """docs/insights.png with UPDATE_SCREENSHOTS=1: a quarter of sample requests."""
    bot = await start(fake_slack, fake_connect, database_url)
    try:
        await seed_spread(bot.runtime.store, now=NOW)
        context = await browser.new_context(
            extra_http_headers=credentials(AUDITOR),
            viewport={"width": 1100, "height": 900},
            java_script_enabled=False,
        )
        page = await context.new_page()
        response = await page.goto(f"{bot.base_url}/requests?view=insights")
        assert response is not None and response.status == 200
        assert len(await drawn_segments(page)) > 20
        update = os.environ.get("UPDATE_SCREENSHOTS") == "1"
        shot = SCREENSHOT if update else tmp_path / "insights.png"
        shot.parent.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
        await context.close()
    finally:
        await bot.stop()
