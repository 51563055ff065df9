"""The audit page lists group requests beside account requests: a directory group brought in
(named as the group: it has no person) and an account's groups, in HTML, JSON and CSV, and the
search box finds a group by its name."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from bot.web.audit_page import CSV_COLUMNS
from bot.workflow.models import GroupRef, NewRequest, Person, RequestKind
from tests.support.audit_data import AUDITOR, T0, audit_clock, credentials, file_request
from tests.support.audit_html import parse_html, row_cells
from tests.support.bot_under_test import REQUESTER, BotUnderTest, make_settings, start_bot

GROUP_GUID = "0b6d1a5e-1111-4222-8333-444455556666"


@pytest.fixture
async def audit_bot(fake_slack, fake_connect, database_url) -> AsyncIterator[BotUnderTest]:
    settings = make_settings(
        fake_slack,
        fake_connect,
        database_url,
        trust_connect_credentials=True,
        audit_users=[AUDITOR],
    )
    bot = await start_bot(settings, fake_slack, fake_connect, clock=audit_clock)
    store = bot.runtime.store
    await file_request(store, "r1-account", "ann", "Ann Alyst", minutes=1)
    await store.create(
        NewRequest(
            request_id="r2-group",
            requester_id=REQUESTER,
            person=Person("", "", "", "TICKET+group/never-shown=="),
            justification="the analysts share dashboards",
            created_at=T0 + timedelta(minutes=2),
            kind=RequestKind.NEW_GROUP,
            group_name="analysts",
        )
    )
    await store.create(
        NewRequest(
            request_id="r3-join",
            requester_id=REQUESTER,
            person=Person("julie1", "Julie Goolly", "julie1@example.com", ""),
            justification="joins the analysts",
            created_at=T0 + timedelta(minutes=3),
            kind=RequestKind.JOIN_GROUPS,
            connect_guid="6f1c2d3e-4a5b-4c6d-8e7f-001122334455",
            groups=(GroupRef(GROUP_GUID, "analysts"),),
        )
    )
    try:
        yield bot
    finally:
        await bot.stop()


async def test_group_requests_are_listed_beside_account_requests(audit_bot: BotUnderTest) -> None:
    headers = credentials(AUDITOR)
    response = await audit_bot.http.get(
        "/requests", headers={**headers, "Accept": "application/json"}
    )
    body = response.json()
    assert [row["id"] for row in body["requests"]] == ["r3-join", "r2-group", "r1-account"]
    group = next(row for row in body["requests"] if row["id"] == "r2-group")
    assert (group["kind"], group["group"], group["groups"]) == ("new_group", "analysts", [])
    assert [step["action"] for step in group["steps"]] == ["create_group"]
    join = next(row for row in body["requests"] if row["id"] == "r3-join")
    assert join["kind"] == "join_groups"
    assert join["groups"] == [{"guid": GROUP_GUID, "name": "analysts"}]
    assert [step["action"] for step in join["steps"]] == ["add_to_group"]
    assert "TICKET" not in response.text

    page = parse_html((await audit_bot.http.get("/requests", headers=headers)).text)
    group_cells = row_cells(page, "r2-group")
    assert any("Group: analysts" in cell for cell in group_cells)
    assert any("New group" in cell for cell in group_cells)
    join_cells = row_cells(page, "r3-join")
    assert any("Join groups" in cell and "Groups: analysts" in cell for cell in join_cells)

    response = await audit_bot.http.get("/requests", params={"format": "csv"}, headers=headers)
    rows = list(csv.reader(io.StringIO(response.text.removeprefix("\ufeff"))))
    assert tuple(rows[0]) == CSV_COLUMNS
    records = {row[0]: dict(zip(CSV_COLUMNS, row, strict=True)) for row in rows[1:]}
    assert records["r2-group"]["group_name"] == "analysts"
    assert records["r3-join"]["groups"] == "analysts"

    found = await audit_bot.http.get(
        "/requests", params={"q": "analy"}, headers={**headers, "Accept": "application/json"}
    )
    assert [row["id"] for row in found.json()["requests"]] == ["r2-group"]
