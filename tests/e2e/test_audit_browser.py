"""The audit page in a real headless browser: Debian's chromium driven by Playwright.

No browser is ever downloaded: the test uses /usr/bin/chromium and skips (with the reason) where
it is missing, except under CI=true, where a missing browser fails the run instead of letting a
green build prove nothing about the page.

The README's screenshot comes from here:
`UPDATE_SCREENSHOTS=1 pytest tests/e2e/test_audit_browser.py` rewrites docs/audit-page.png.
Ordinary runs write theirs to the test's temporary directory, so running the suite never dirties
the working tree.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.support.audit_data import AUDITOR, NEWEST_FIRST, audit_clock, credentials, seed
from tests.support.bot_under_test import BotUnderTest, make_settings, start_bot

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "audit-page.png"


def _missing(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the browser test must run in CI)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    try:
        from playwright.async_api import async_playwright
    except ImportError as exc:  # pragma: no cover - playwright is a dev dependency
        _missing(f"Playwright is not installed: {exc}")
    if not CHROMIUM.exists():
        _missing(f"{CHROMIUM} is missing (Debian: apt-get install -y chromium)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def audit_bot(fake_slack, fake_connect, database_url) -> AsyncIterator[BotUnderTest]:
    settings = make_settings(
        fake_slack,
        fake_connect,
        database_url,
        trust_connect_credentials=True,
        audit_users=[AUDITOR],
        audit_allow_connect_admins=False,
    )
    bot = await start_bot(settings, fake_slack, fake_connect, clock=audit_clock)
    try:
        await seed(bot.runtime.store)
        yield bot
    finally:
        await bot.stop()


async def row_ids(page: Any) -> list[str]:
    return await page.eval_on_selector_all(
        "tbody tr", "rows => rows.map(row => row.dataset.requestId)"
    )


async def test_audit_page_in_a_browser(
    browser: Any, audit_bot: BotUnderTest, tmp_path: Path
) -> None:
    # What Connect does for a logged-in visitor: the header on every request, links included.
    context = await browser.new_context(
        extra_http_headers=credentials(AUDITOR),
        viewport={"width": 1360, "height": 900},
        accept_downloads=True,
        java_script_enabled=False,  # the page must work without it
    )
    page = await context.new_page()
    response = await page.goto(f"{audit_bot.base_url}/requests")
    assert response is not None and response.status == 200
    assert await page.title() == "Account requests · connect-user-bot"
    assert await row_ids(page) == NEWEST_FIRST
    assert await page.inner_text("#total") == "7 requests"
    assert "auditor" in await page.inner_text("header")

    shot = SCREENSHOT if os.environ.get("UPDATE_SCREENSHOTS") == "1" else tmp_path / "audit.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000

    # Filter by state: tick a box, submit the form.
    await page.check("input[name=state][value=denied]")
    await page.check("input[name=state][value=approved]")
    await page.click("button[type=submit]")
    assert parse_qs(urlsplit(page.url).query)["state"] == ["approved", "denied"]
    assert await row_ids(page) == ["r2-denied", "r1-approved"]
    denied = await page.inner_text("tr[data-request-id=r2-denied]")
    assert "boris" in denied and "Boris Petrov" in denied
    assert "controller's sign-off" in denied
    assert await page.is_checked("input[name=state][value=denied]")

    # Search, on top of no state filter.
    await page.click("text=Clear")
    assert await row_ids(page) == NEWEST_FIRST
    await page.fill("input[name=q]", "zoë")
    await page.click("button[type=submit]")
    assert await row_ids(page) == ["r5-expired"]
    assert await page.input_value("input[name=q]") == "zoë"
    await page.fill("input[name=q]", "nobody at all")
    await page.click("button[type=submit]")
    assert await row_ids(page) == []
    assert "No requests match" in await page.inner_text("main")

    # Markup in a justification is shown as text, not run.
    await page.fill("input[name=q]", "dana")
    await page.click("button[type=submit]")
    cell = await page.inner_text("tr[data-request-id=r4-exists] td.why")
    assert cell == "Needs <b>read</b> access to reports & dashboards"

    # Paging keeps the filters; the links are relative, so they carry the path they came from.
    await page.goto(f"{audit_bot.base_url}/requests?per_page=3&state=")
    assert await row_ids(page) == NEWEST_FIRST[:3]
    await page.click("text=Older →")
    assert await row_ids(page) == NEWEST_FIRST[3:6]
    assert "Page 2 of 3" in await page.inner_text("nav.pages")
    await page.click("text=← Newer")
    assert await row_ids(page) == NEWEST_FIRST[:3]

    # The CSV link downloads the filtered export.
    await page.goto(f"{audit_bot.base_url}/requests?state=denied")
    async with page.expect_download() as pending:
        await page.click("text=Download CSV")
    download = await pending.value
    assert download.suggested_filename.startswith("connect-user-requests-")
    saved = tmp_path / download.suggested_filename
    await download.save_as(str(saved))
    text = saved.read_text(encoding="utf-8-sig")
    assert text.splitlines()[1].startswith("r2-denied,")
    assert "'@boris finance reports" in text
    await context.close()


async def test_a_visitor_not_on_the_list_sees_no_requests(
    browser: Any, audit_bot: BotUnderTest
) -> None:
    context = await browser.new_context(extra_http_headers=credentials("mallory"))
    page = await context.new_page()
    response = await page.goto(f"{audit_bot.base_url}/requests")
    assert response is not None and response.status == 403
    assert "mallory may not see the account requests" in await page.inner_text("main")
    assert await page.query_selector("tbody tr") is None
    await context.close()

    context = await browser.new_context()
    page = await context.new_page()
    response = await page.goto(f"{audit_bot.base_url}/requests")
    assert response is not None and response.status == 401
    await context.close()
