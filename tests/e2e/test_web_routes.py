"""`GET /hello` and `GET /requests` through the real HTTP server: who the visitor is (trusted
header, names or GUIDs resolved through the fake Connect), who may audit, and the audit page as
HTML, JSON and CSV. Also: the app under a path prefix, as Posit Connect serves it."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

import httpx
import pytest
import uvicorn

from bot.app import create_asgi_app
from bot.runtime import build_runtime
from bot.store.audit_queries import AuditFilter, iter_requests, like_pattern, list_requests
from bot.web.audit_page import CSV_COLUMNS, negotiate, neutralise_cell
from tests.support import store_backends
from tests.support.audit_data import (
    AUDITOR,
    CREDENTIALS,
    HOSTILE,
    NEWEST_FIRST,
    audit_clock,
    credentials,
    file_hostile,
    file_request,
    seed,
)
from tests.support.audit_html import parse_html, row_cells
from tests.support.bot_under_test import (
    APPROVER,
    APPROVER_2,
    REQUESTER,
    SIGNING_SECRET,
    BotUnderTest,
    free_socket,
    make_settings,
    start_bot,
)
from tests.support.fake_connect import FakeConnect
from tests.support.fake_slack import FakeSlack
from tests.support.slack_requests import event_callback_body, post_signed, slash_command_body

# Parametrised over sqlite and postgres (assigned, so test parameters of that name are not
# redefinitions).
store_backend = store_backends.store_backend


@contextlib.asynccontextmanager
async def running_bot(
    fake_slack: FakeSlack,
    fake_connect: FakeConnect,
    database_url: str,
    *,
    clock: Callable[[], datetime] | None = None,
    **overrides: Any,
) -> AsyncIterator[BotUnderTest]:
    settings = make_settings(fake_slack, fake_connect, database_url, **overrides)
    bot = await start_bot(settings, fake_slack, fake_connect, clock=clock)
    try:
        yield bot
    finally:
        await bot.stop()


@pytest.fixture
async def audit_bot(fake_slack, fake_connect, database_url) -> AsyncIterator[BotUnderTest]:
    """Trusting the header, AUDITOR on the list, seeded with one request per state."""
    async with running_bot(
        fake_slack,
        fake_connect,
        database_url,
        trust_connect_credentials=True,
        audit_users=[AUDITOR],
        clock=audit_clock,
    ) as bot:
        await seed(bot.runtime.store)
        yield bot


async def audit_json(bot: BotUnderTest, params: dict | None = None, **kwargs: Any) -> dict:
    response = await bot.http.get(
        "/requests",
        params=params,
        headers={**credentials(AUDITOR), "Accept": "application/json"},
        **kwargs,
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    return response.json()


def ids(body: dict) -> list[str]:
    return [row["id"] for row in body["requests"]]


# -- /hello --------------------------------------------------------------------------------------


async def test_hello_without_trust_greets_everyone_as_a_stranger(bot: BotUnderTest) -> None:
    for headers in ({}, credentials("alice"), {CREDENTIALS: "not even json"}):
        response = await bot.http.get("/hello", headers=headers)
        assert response.status_code == 200
        assert response.json() == {"message": "Howdy, stranger."}


async def test_hello_with_trust(fake_slack, fake_connect, database_url) -> None:
    async with running_bot(
        fake_slack, fake_connect, database_url, trust_connect_credentials=True
    ) as bot:
        response = await bot.http.get("/hello", headers=credentials("alice", ["eng"]))
        assert response.status_code == 200
        assert response.json() == {"message": "So nice to see you, alice."}
        assert "no-store" in response.headers["cache-control"]

        response = await bot.http.get("/hello", headers=credentials("zoë"))
        assert response.json() == {"message": "So nice to see you, zoë."}

        for headers in ({}, credentials(None), credentials("")):
            response = await bot.http.get("/hello", headers=headers)
            assert response.json() == {"message": "Howdy, stranger."}
        assert fake_connect.count("GET", "v1/users*") == 0, "names need no Connect call"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("not json", "not valid UTF-8 JSON"),
        ('["alice"]', "must be a JSON object"),
        ('{"user": 7}', "user must be a string"),
        ('{"user": "a", "groups": "eng"}', "groups must be a list"),
        (json.dumps({"user": "a", "groups": ["g" * 100] * 90}), "at most 8192"),
        (json.dumps({"user": "a", "groups": [f"g{i}" for i in range(201)]}), "more than 200"),
        ('{"user": ' + "[" * 3000 + "]" * 3000 + "}", "nested too deeply"),
    ],
)
async def test_hello_malformed_header_is_400(
    fake_slack, fake_connect, database_url, value: str, expected: str
) -> None:
    async with running_bot(
        fake_slack, fake_connect, database_url, trust_connect_credentials=True
    ) as bot:
        response = await bot.http.get("/hello", headers={CREDENTIALS: value})
        assert response.status_code == 400
        assert expected in response.json()["error"]


async def test_header_sent_twice_is_400(fake_slack, fake_connect, database_url) -> None:
    async with running_bot(
        fake_slack, fake_connect, database_url, trust_connect_credentials=True
    ) as bot:
        response = await bot.http.get(
            "/hello",
            headers=[
                (CREDENTIALS, json.dumps({"user": "alice"})),
                (CREDENTIALS, json.dumps({"user": "mallory"})),
            ],
        )
        assert response.status_code == 400
        assert "more than once" in response.json()["error"]


async def test_hello_in_guid_mode(fake_slack, fake_connect, database_url) -> None:
    guid = fake_connect.add_local_user("hana", "Hana", "H")
    group = fake_connect.add_group("analysts")
    async with running_bot(
        fake_slack,
        fake_connect,
        database_url,
        trust_connect_credentials=True,
        connect_credentials_use_guid=True,
    ) as bot:
        response = await bot.http.get("/hello", headers=credentials(guid, [group]))
        assert response.json() == {"message": "So nice to see you, hana."}
        await bot.http.get("/hello", headers=credentials(guid, [group]))
        assert fake_connect.count("GET", f"v1/users/{guid}") == 1, "cached"

        unknown = "12345678-1234-4234-8234-123456789abc"
        response = await bot.http.get("/hello", headers=credentials(unknown))
        assert response.status_code == 200
        assert response.json() == {"message": "Howdy, stranger."}

        response = await bot.http.get("/hello", headers=credentials("hana"))
        assert response.status_code == 400
        assert "GUID" in response.json()["error"]

        fake_connect.outage = "refuse"
        response = await bot.http.get("/hello", headers=credentials(unknown.replace("1", "2")))
        assert response.status_code == 503
        assert "could not be reached" in response.json()["error"]
        assert "Traceback" not in response.text


# -- /requests: who may see it -------------------------------------------------------------------


async def test_requests_do_not_exist_without_trust(bot: BotUnderTest) -> None:
    response = await bot.http.get("/requests", headers=credentials(AUDITOR))
    assert response.status_code == 404


async def test_anonymous_visitor_gets_401(audit_bot: BotUnderTest) -> None:
    response = await audit_bot.http.get("/requests")
    assert response.status_code == 401
    assert "log in to Posit Connect" in response.text
    assert "amara" not in response.text
    response = await audit_bot.http.get("/requests", headers={"Accept": "application/json"})
    assert response.status_code == 401
    assert "log in" in response.json()["error"]


async def test_unlisted_visitor_gets_403(audit_bot: BotUnderTest) -> None:
    response = await audit_bot.http.get("/requests", headers=credentials("mallory", ["eng"]))
    assert response.status_code == 403
    assert "mallory may not see" in response.text
    assert "amara" not in response.text
    # Bad parameters from a stranger are still a 403: the page reveals nothing before identity.
    response = await audit_bot.http.get("/requests?state=bogus", headers=credentials("mallory"))
    assert response.status_code == 403


async def test_malformed_header_on_requests_is_400(audit_bot: BotUnderTest) -> None:
    response = await audit_bot.http.get(
        "/requests", headers={CREDENTIALS: "{", "Accept": "application/json"}
    )
    assert response.status_code == 400
    assert "not valid UTF-8 JSON" in response.json()["error"]


async def test_audit_groups_by_name(fake_slack, fake_connect, database_url) -> None:
    async with running_bot(
        fake_slack,
        fake_connect,
        database_url,
        trust_connect_credentials=True,
        audit_groups=["compliance"],
        audit_allow_connect_admins=False,
    ) as bot:
        allowed = await bot.http.get("/requests", headers=credentials("ivy", ["x", "compliance"]))
        assert allowed.status_code == 200
        denied = await bot.http.get("/requests", headers=credentials("ivy", ["Compliance"]))
        assert denied.status_code == 403
        # LDAP: no groups at all; only the user list could let this visitor in.
        ldap = await bot.http.get("/requests", headers=credentials("ivy"))
        assert ldap.status_code == 403
        assert fake_connect.count("GET", "v1/*") == 0


async def test_audit_lists_by_guid_in_guid_mode(fake_slack, fake_connect, database_url) -> None:
    listed = fake_connect.add_local_user("jules")
    member = fake_connect.add_local_user("kim")
    outsider = fake_connect.add_local_user("lee")
    compliance = fake_connect.add_group("compliance")
    other = fake_connect.add_group("other")
    async with running_bot(
        fake_slack,
        fake_connect,
        database_url,
        trust_connect_credentials=True,
        connect_credentials_use_guid=True,
        audit_users=[listed.upper()],
        audit_groups=[compliance],
        audit_allow_connect_admins=False,
    ) as bot:
        assert (await bot.http.get("/requests", headers=credentials(listed))).status_code == 200
        response = await bot.http.get("/requests", headers=credentials(member, [compliance]))
        assert response.status_code == 200
        assert "Signed in as <strong>kim</strong>" in response.text
        response = await bot.http.get("/requests", headers=credentials(outsider, [other]))
        assert response.status_code == 403
        assert "lee may not see" in response.text


async def test_audit_group_names_in_guid_mode_are_resolved(
    fake_slack, fake_connect, database_url
) -> None:
    member = fake_connect.add_local_user("mo")
    compliance = fake_connect.add_group("compliance")
    async with running_bot(
        fake_slack,
        fake_connect,
        database_url,
        trust_connect_credentials=True,
        connect_credentials_use_guid=True,
        audit_groups=["compliance"],
        audit_allow_connect_admins=False,
    ) as bot:
        response = await bot.http.get("/requests", headers=credentials(member, [compliance]))
        assert response.status_code == 200
        assert fake_connect.count("GET", f"v1/groups/{compliance}") == 1


async def test_audit_user_guid_in_name_mode(fake_slack, fake_connect, database_url) -> None:
    guid = fake_connect.add_local_user("nadia")
    async with running_bot(
        fake_slack,
        fake_connect,
        database_url,
        trust_connect_credentials=True,
        audit_users=[guid],
        audit_allow_connect_admins=False,
    ) as bot:
        assert (await bot.http.get("/requests", headers=credentials("nadia"))).status_code == 200
        assert (await bot.http.get("/requests", headers=credentials("olga"))).status_code == 403
        assert fake_connect.count("GET", f"v1/users/{guid}") == 1, "cached per configured entry"


async def test_connect_administrators(fake_slack, fake_connect, database_url) -> None:
    fake_connect.add_local_user("root", user_role="administrator")
    fake_connect.add_local_user("pat", user_role="publisher")
    async with running_bot(
        fake_slack, fake_connect, database_url, trust_connect_credentials=True
    ) as bot:
        assert (await bot.http.get("/requests", headers=credentials("root"))).status_code == 200
        assert (await bot.http.get("/requests", headers=credentials("pat"))).status_code == 403
        fake_connect.reset_calls()
        assert (await bot.http.get("/requests", headers=credentials("root"))).status_code == 200
        assert fake_connect.count() == 0, "the role is cached"

        # Connect down and nothing cached for this visitor: 503, with a reason.
        fake_connect.outage = "http_503"
        response = await bot.http.get(
            "/requests", headers={**credentials("quinn"), "Accept": "application/json"}
        )
        assert response.status_code == 503
        assert "could not be reached" in response.json()["error"]

    async with running_bot(
        fake_slack,
        fake_connect,
        database_url,
        trust_connect_credentials=True,
        audit_allow_connect_admins=False,
    ) as bot:
        fake_connect.outage = None
        assert (await bot.http.get("/requests", headers=credentials("root"))).status_code == 403


async def test_listed_auditor_needs_no_connect(audit_bot: BotUnderTest) -> None:
    audit_bot.connect.outage = "refuse"
    response = await audit_bot.http.get("/requests", headers=credentials(AUDITOR))
    assert response.status_code == 200


async def test_admin_in_guid_mode(fake_slack, fake_connect, database_url) -> None:
    root = fake_connect.add_local_user("groot", user_role="administrator")
    async with running_bot(
        fake_slack,
        fake_connect,
        database_url,
        trust_connect_credentials=True,
        connect_credentials_use_guid=True,
    ) as bot:
        assert (await bot.http.get("/requests", headers=credentials(root))).status_code == 200
        # The role came with the GUID look-up: one call, no find_user.
        assert fake_connect.count("GET", f"v1/users/{root}") == 1
        assert fake_connect.count("GET", "v1/users") == 0


# -- /requests: the page -------------------------------------------------------------------------


async def test_json_lists_every_request_newest_first(audit_bot: BotUnderTest) -> None:
    body = await audit_json(audit_bot)
    assert ids(body) == NEWEST_FIRST
    assert body["total"] == 7 and body["page"] == 1 and body["pages"] == 1
    denied = next(row for row in body["requests"] if row["id"] == "r2-denied")
    assert denied == {
        "id": "r2-denied",
        "state": "denied",
        "requester": REQUESTER,
        "person": {
            "username": "boris",
            "full_name": "Boris Petrov",
            "email": "boris@example.com",
        },
        "justification": "+1 from his manager, wants the finance reports",
        "created_at": "2026-03-02T09:40:00Z",
        "decided_by": APPROVER_2,
        "decided_at": "2026-03-02T09:42:00Z",
        "deny_reason": "@boris finance reports need the controller's sign-off first",
        "connect_guid": None,
        "kind": "new_account",
        "role_asked": None,  # Connect's default role: no choice was offered
        "role_granted": None,
        "role_before": None,
        "steps": [
            {
                "action": "create_account",
                "status": "pending",
                "error": None,
                "note": None,
                "done_at": None,
            }
        ],
        "approvals": [],
        "group": None,
        "groups": [],
    }
    approved = next(row for row in body["requests"] if row["id"] == "r1-approved")
    assert approved["connect_guid"] == "6f1c2d3e-4a5b-4c6d-8e7f-001122334455"
    assert approved["decided_by"] == APPROVER
    assert (approved["kind"], approved["role_asked"], approved["role_granted"]) == (
        "new_account",
        "publisher",
        "viewer",
    )
    assert [(step["action"], step["status"]) for step in approved["steps"]] == [
        ("create_account", "done"),
        ("set_role", "done"),
    ]
    assert approved["steps"][1]["note"] == "Connect had given that role already"
    assert approved["steps"][1]["done_at"] == "2026-03-02T09:35:00Z"


async def test_no_ticket_anywhere(audit_bot: BotUnderTest) -> None:
    headers = credentials(AUDITOR)
    for params in ({"format": "json"}, {"format": "csv"}, {}):
        response = await audit_bot.http.get("/requests", params=params, headers=headers)
        assert response.status_code == 200
        assert "TICKET" not in response.text
        assert "temp_ticket" not in response.text


async def test_state_filter(audit_bot: BotUnderTest) -> None:
    assert ids(await audit_json(audit_bot, {"state": "denied"})) == ["r2-denied"]
    both = await audit_json(audit_bot, [("state", "pending"), ("state", "approved")])
    assert ids(both) == ["r3-pending", "r1-approved"]
    assert both["filters"]["state"] == ["pending", "approved"]
    assert ids(await audit_json(audit_bot, {"state": "expired,cancelled"})) == [
        "r6-cancelled",
        "r5-expired",
    ]
    assert ids(await audit_json(audit_bot, {"state": ""})) == NEWEST_FIRST


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("AMARA", ["r1-approved"]),  # username, any case
        ("petrov", ["r2-denied"]),  # full name
        ("chen_li@", ["r3-pending"]),  # email
        ("uother", ["r3-pending"]),  # requester's Slack id
        ("zoë", ["r5-expired"]),
        ("' OR 1=1 --", []),
        ("nobody", []),
    ],
)
async def test_search(audit_bot: BotUnderTest, q: str, expected: list[str]) -> None:
    assert ids(await audit_json(audit_bot, {"q": q})) == expected


async def test_search_takes_like_wildcards_literally(audit_bot: BotUnderTest) -> None:
    await file_hostile(audit_bot.runtime.store)
    for q, expected in [
        ("50%", [HOSTILE]),  # a literal %, not "anything"
        ("%", [HOSTILE]),
        ("e_5", [HOSTILE]),  # a literal _ ...
        ("a_a", []),  # ... not "any one character" (amara, dana)
        ("_", [HOSTILE, "r3-pending"]),
        ("\\", []),
        ("-2+3@", [HOSTILE]),
    ]:
        assert ids(await audit_json(audit_bot, {"q": q})) == expected, q


async def test_search_and_state_together(audit_bot: BotUnderTest) -> None:
    body = await audit_json(audit_bot, {"q": "example.com", "state": "approved,denied"})
    assert ids(body) == ["r2-denied", "r1-approved"]


async def test_pagination(audit_bot: BotUnderTest) -> None:
    pages = [await audit_json(audit_bot, {"per_page": 3, "page": n}) for n in (1, 2, 3)]
    assert [ids(page) for page in pages] == [NEWEST_FIRST[:3], NEWEST_FIRST[3:6], NEWEST_FIRST[6:]]
    assert all(page["pages"] == 3 and page["total"] == 7 for page in pages)
    beyond = await audit_json(audit_bot, {"per_page": 3, "page": 9})
    assert beyond["requests"] == [] and beyond["total"] == 7


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"state": "bogus"}, "unknown state 'bogus'"),
        ({"state": "pending,nope"}, "unknown state 'nope'"),
        ({"page": "-1"}, "page must be a whole number from 1 to 100000"),
        ({"page": "0"}, "page must be a whole number"),
        ({"page": "abc"}, "page must be a whole number"),
        ({"page": "1.5"}, "page must be a whole number"),
        ({"page": "10" * 20}, "page must be a whole number"),
        ({"page": "100001"}, "page must be a whole number"),
        ({"per_page": "0"}, "per_page must be a whole number from 1 to 200"),
        ({"per_page": "5000"}, "per_page must be a whole number from 1 to 200"),
        ({"format": "xml"}, "format must be one of: html, json, csv"),
        ({"q": "x" * 201}, "limited to 200 characters"),
        ([("page", "1"), ("page", "2")], "give page at most once"),
    ],
)
async def test_bad_parameters_are_400(audit_bot: BotUnderTest, params, expected: str) -> None:
    response = await audit_bot.http.get(
        "/requests",
        params=params,
        headers={**credentials(AUDITOR), "Accept": "application/json"},
    )
    assert response.status_code == 400
    assert expected in response.json()["error"]
    # And as a page for a browser.
    browser = await audit_bot.http.get(
        "/requests", params=params, headers={**credentials(AUDITOR), "Accept": "text/html"}
    )
    assert browser.status_code == 400
    assert browser.headers["content-type"].startswith("text/html")


async def test_html_page(audit_bot: BotUnderTest) -> None:
    response = await audit_bot.http.get(
        "/requests",
        headers={
            **credentials(AUDITOR),
            "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        },
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert "Signed in as <strong>auditor</strong>" in page
    for request_id in NEWEST_FIRST:
        assert f'data-request-id="{request_id}"' in page
    assert page.index("r7-provisioning") < page.index("r1-approved")
    assert "Amara Okafor" in page and "amara@example.com" in page
    assert "6f1c2d3e-4a5b-4c6d-8e7f-001122334455" in page
    document = parse_html(page)
    denial = row_cells(document, "r2-denied")[5]
    assert "@boris finance reports need the controller's sign-off first" in denial
    # Escaped, never markup: shown as the text it is.
    assert "<b>" not in page and not document.find_all("b")
    assert "Needs &lt;b&gt;read&lt;/b&gt; access to reports &amp; dashboards" in page
    assert row_cells(document, "r4-exists")[4] == (
        "Needs <b>read</b> access to reports & dashboards"
    )
    # The kind and the roles: asked, and granted once approved.
    assert row_cells(document, "r1-approved")[7] == (
        "New accountRole asked: PublisherRole granted: Viewer"
    )
    assert row_cells(document, "r2-denied")[7] == "New accountRole asked: Connect's default role"
    assert "7 requests" in page
    # Readable without scripts, and locked down.
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp
    assert "no-store" in response.headers["cache-control"]
    assert response.headers["x-content-type-options"] == "nosniff"
    # Every link is relative to the page, so it works under Connect's path prefix.
    assert 'href="/' not in page and 'action="' not in page


async def test_html_pagination_links_keep_the_filters(audit_bot: BotUnderTest) -> None:
    response = await audit_bot.http.get(
        "/requests",
        params={"per_page": 2, "q": "example", "state": "denied,approved,pending"},
        headers=credentials(AUDITOR),
    )
    page = response.text
    assert "Page 1 of 2" in page
    assert (
        'href="?state=denied&amp;state=approved&amp;state=pending&amp;q=example&amp;page=2'
        '&amp;per_page=2"' in page
    )
    assert 'name="state" value="denied" checked' in page
    assert 'name="q" value="example"' in page


async def test_csv_download(audit_bot: BotUnderTest) -> None:
    response = await audit_bot.http.get(
        "/requests", params={"format": "csv"}, headers=credentials(AUDITOR)
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    disposition = response.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="connect-user-requests-')
    assert response.text.startswith("\ufeff"), "Excel needs the BOM to read UTF-8"
    rows = list(csv.reader(io.StringIO(response.text.removeprefix("\ufeff"))))
    assert tuple(rows[0]) == CSV_COLUMNS
    body = [dict(zip(CSV_COLUMNS, row, strict=True)) for row in rows[1:]]
    assert [row["id"] for row in body] == NEWEST_FIRST
    denied = next(row for row in body if row["id"] == "r2-denied")
    assert denied["deny_reason"] == "'@boris finance reports need the controller's sign-off first"
    assert denied["justification"] == "'+1 from his manager, wants the finance reports"
    assert denied["decided_at"] == "2026-03-02T09:42:00Z"
    assert next(row for row in body if row["id"] == "r5-expired")["full_name"] == (
        "Emil Zoë Ångström"
    )
    approved = next(row for row in body if row["id"] == "r1-approved")
    assert (approved["kind"], approved["role_asked"], approved["role_granted"]) == (
        "new_account",
        "publisher",
        "viewer",
    )
    assert (denied["role_asked"], denied["role_granted"]) == ("", "")
    # Filters apply; pagination does not (the download is everything that matches).
    response = await audit_bot.http.get(
        "/requests",
        params={"state": "denied,approved", "per_page": 1},
        headers={**credentials(AUDITOR), "Accept": "text/csv"},
    )
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text.removeprefix("\ufeff"))))
    assert [row[0] for row in rows[1:]] == ["r2-denied", "r1-approved"]


async def test_hostile_values_are_inert_in_every_format(audit_bot: BotUnderTest) -> None:
    await file_hostile(audit_bot.runtime.store)
    headers = credentials(AUDITOR)
    csv_text = (await audit_bot.http.get("/requests?format=csv", headers=headers)).text
    rows = list(csv.reader(io.StringIO(csv_text.removeprefix("\ufeff"))))
    hostile = dict(zip(CSV_COLUMNS, rows[1], strict=True))
    assert hostile["id"] == HOSTILE
    assert hostile["justification"] == '\'=HYPERLINK("http://evil.example","click")'
    assert hostile["email"] == "'-2+3@example.com"
    assert hostile["deny_reason"] == "<script>alert('x')</script> & more"  # not a formula

    page = (await audit_bot.http.get("/requests", headers=headers)).text
    assert "<script>" not in page
    document = parse_html(page)
    assert not document.find_all("script")
    cells = row_cells(document, HOSTILE)
    assert cells[5].endswith("Reason: <script>alert('x')</script> & more")
    assert cells[4] == '=HYPERLINK("http://evil.example","click")'

    body = await audit_json(audit_bot)
    assert body["requests"][0]["justification"] == '=HYPERLINK("http://evil.example","click")'


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("\uff1d1+1", "'\uff1d1+1"),
        ("plain", "plain"),
        ("a=b", "a=b"),
        ("", ""),
        (None, ""),
    ],
)
def test_formula_neutralisation(value: str | None, expected: str) -> None:
    assert neutralise_cell(value) == expected


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, "html"),
        ("*/*", "html"),
        ("application/json", "json"),
        ("text/csv", "csv"),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "html"),
        ("application/json;q=0.5, text/csv", "csv"),
        ("text/csv;q=0, application/json", "json"),
        ("image/png", "html"),
    ],
)
def test_negotiation(accept: str | None, expected: str) -> None:
    assert negotiate(accept) == expected


# -- queries on both databases -------------------------------------------------------------------


def test_like_pattern_escapes_wildcards() -> None:
    assert like_pattern("50%_a\\b") == "%50\\%\\_a\\\\b%"


async def test_queries_on_sqlite_and_postgres(store_backend) -> None:
    await seed(store_backend.store)
    engine = store_backend.engine
    page = await list_requests(engine, AuditFilter(), page=1, per_page=4)
    assert [r.id for r in page.records] == NEWEST_FIRST[:4]
    assert page.total == 7 and page.pages == 2
    streamed = [r.id async for r in iter_requests(engine, AuditFilter(), batch_size=2)]
    assert streamed == NEWEST_FIRST
    assert not hasattr(page.records[0], "temp_ticket")
    await file_hostile(store_backend.store)
    found = await list_requests(engine, AuditFilter(search="50%"), page=1, per_page=10)
    assert [r.id for r in found.records] == [HOSTILE]
    found = await list_requests(engine, AuditFilter(search="PETROV"), page=1, per_page=10)
    assert [r.id for r in found.records] == ["r2-denied"]
    found = await list_requests(engine, AuditFilter(search="a_a"), page=1, per_page=10)
    assert found.records == []
    found = await list_requests(engine, AuditFilter(search="a_a"), page=1, per_page=10)
    assert found.records == []
    states = AuditFilter(states=("denied", "pending"))
    assert [r.id for r in (await list_requests(engine, states, page=1, per_page=10)).records] == [
        HOSTILE,
        "r3-pending",
        "r2-denied",
    ]


async def test_keyset_export_breaks_timestamp_ties_by_id(store_backend) -> None:
    for n in range(5):
        await file_request(store_backend.store, f"tie-{n}", f"user{n}", f"User {n}", minutes=0)
    streamed = [
        r.id async for r in iter_requests(store_backend.engine, AuditFilter(), batch_size=2)
    ]
    assert streamed == [f"tie-{n}" for n in reversed(range(5))]


# -- under Connect's path prefix -----------------------------------------------------------------


async def test_served_under_a_root_path(fake_slack, fake_connect, database_url) -> None:
    """Connect serves content at /content/<guid>/: the ASGI root_path. Slack's endpoint and the
    pages must answer whether the server puts the prefix in `path` or not."""
    settings = make_settings(
        fake_slack,
        fake_connect,
        database_url,
        trust_connect_credentials=True,
        audit_users=[AUDITOR],
    )
    runtime = build_runtime(settings, instance_id="rooted")
    app = create_asgi_app(settings, runtime=runtime)
    sock = free_socket()
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", lifespan="on", root_path="/content/abc")
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            assert not task.done(), task
            await asyncio.sleep(0.01)
        base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            body = slash_command_body(text="help", response_url=fake_slack.new_response_url())
            response = await post_signed(http, body, SIGNING_SECRET, path="/slack/events")
            assert response.status_code == 200
            assert (await http.get("/healthz")).status_code == 200
            page = await http.get("/requests", headers=credentials(AUDITOR))
            assert page.status_code == 200 and "Account requests" in page.text

        # The same app with the prefix inside `path` (as servers following the ASGI spec since
        # 2023 send it), and without (the older convention): both route.
        for url in (
            "http://connect.test/content/abc/slack/events",
            "http://connect.test/slack/events",
        ):
            transport = httpx.ASGITransport(app=app, root_path="/content/abc")
            async with httpx.AsyncClient(transport=transport) as http:
                body = slash_command_body(text="help", response_url=fake_slack.new_response_url())
                response = await post_signed(http, body, SIGNING_SECRET, path=url)
                assert response.status_code == 200, url
        await runtime.supervisor.join()
    finally:
        server.should_exit = True
        await task


async def test_unreadable_store_is_503(audit_bot: BotUnderTest, monkeypatch) -> None:
    async def unreachable(*args: object, **kwargs: object) -> None:
        raise OSError("database is gone")

    monkeypatch.setattr("bot.web.visitors.list_requests", unreachable)
    response = await audit_bot.http.get(
        "/requests", headers={**credentials(AUDITOR), "Accept": "application/json"}
    )
    assert response.status_code == 503
    assert response.json() == {"error": "The request history cannot be read right now."}


async def test_the_audit_page_lists_lock_and_unlock_requests(
    fake_slack, fake_connect, database_url
) -> None:
    fake_connect.add_local_user("julie3", "Julie", "Three", "julie3@example.com", locked=True)
    async with running_bot(
        fake_slack,
        fake_connect,
        database_url,
        trust_connect_credentials=True,
        audit_users=[AUDITOR],
    ) as bot:
        response, _ = await bot.command("unlock julie3 Back from leave", user_id=REQUESTER)
        assert response.status_code == 200
        # julie1 leaves: Slack deactivates her, and the bot asks to lock her account.
        user = fake_slack.add_user(
            "UJULIE1", deleted=True, email="julie1@example.com", real_name="Julie Goolly"
        )
        response = await bot.post(event_callback_body({"type": "user_change", "user": user}))
        assert response.status_code == 200
        await bot.settle()
        [unlock, lock] = await bot.runtime.store.list_requests()
        body = await audit_json(bot)
        kinds = {row["id"]: (row["kind"], row["requester"]) for row in body["requests"]}
        assert kinds == {
            unlock.id: ("unlock", REQUESTER),
            lock.id: ("lock", "bot:slack-deactivation"),
        }
        response = await bot.http.get(
            "/requests", headers={**credentials(AUDITOR), "Accept": "text/html"}
        )
        document = parse_html(response.text)
        assert row_cells(document, unlock.id)[7] == "Unlock account"
        assert row_cells(document, lock.id)[7] == "Lock account"
        assert row_cells(document, lock.id)[3] == "the bot: deactivated in Slack"
