"""The fake Connect (tests/support/fake_connect.py) against Connect's published 2023.09 schema:
the user record's fields and types, nanosecond timestamps, the error table's codes, texts and
statuses, sorted searches, server_settings per login provider, the key rules, the endpoints the
next issues need, and the fault switches. Every test ends by checking each error the fake made up
against the table (`every_error_is_published`)."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.fake_connect import FakeConnect

DATA = Path(__file__).resolve().parents[1] / "support" / "data"

# Connect 2023.09's User schema marks all eleven required; remote results add temp_ticket.
USER_FIELDS = (
    "guid",
    "email",
    "username",
    "first_name",
    "last_name",
    "user_role",
    "created_time",
    "updated_time",
    "active_time",
    "confirmed",
    "locked",
)
REMOTE_FIELDS = (*USER_FIELDS, "temp_ticket")
TIME_FIELDS = ("created_time", "updated_time", "active_time")
# RFC 3339 in UTC, as Go writes it: up to nine fraction digits.
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.(\d{1,9}))?Z$")
ZERO_TIME = "0001-01-01T00:00:00Z"
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def published_table() -> dict[int, tuple[int, str]]:
    entries = json.loads((DATA / "connect-error-codes-2023.09.json").read_text("utf-8"))
    return {e["code"]: (e["http_status"], e["message"]) for e in entries}


TABLE = published_table()


@pytest.fixture
def fake() -> Iterator[FakeConnect]:
    fake = FakeConnect()
    fake.add_directory_user("julie", "Julie", "Martin")
    fake.add_directory_user("julia", "Julia", "Roberts")
    fake.add_directory_user("bob", "Bob", "Juliet")
    fake.add_directory_user("JULES", "Jules", "Verne")
    fake.add_directory_user("ana", "Julie", "Ana")  # first name exactly "julie"
    fake.add_local_user("julia", "Julia", "Roberts", user_role="publisher")
    yield fake
    every_error_is_published(fake)


@pytest.fixture
async def http(fake: FakeConnect) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=fake.transport(),
        base_url=fake.asgi_url + "__api__/",
        headers={"Authorization": f"Key {fake.api_key}"},
    ) as client:
        yield client


def every_error_is_published(fake: FakeConnect) -> None:
    """Each error the fake made up has the published code, text and status."""
    for sent in fake.errors_sent:
        if sent.injected:
            continue
        assert isinstance(sent.body, dict), sent
        assert set(sent.body) == {"code", "error", "payload"}, sent
        code = sent.body["code"]
        assert code in TABLE, sent
        assert (sent.status, sent.body["error"]) == TABLE[code], sent
        assert sent.body["payload"] is None


def assert_code(response: httpx.Response, code: int) -> None:
    assert response.json()["code"] == code, response.text
    assert (response.status_code, response.json()["error"]) == TABLE[code]


def assert_timestamp(value: Any, *, blank: str | None = "forbidden") -> None:
    if blank != "forbidden" and value == blank:
        return
    assert isinstance(value, str) and TIMESTAMP.match(value), value


def assert_user_record(record: dict[str, Any], *, remote: bool, blank: str | None = None) -> None:
    """The published fields with their types; `blank` is what a person without an account
    carries instead of a time (Go's zero time, or null)."""
    fields = REMOTE_FIELDS if remote else USER_FIELDS
    assert set(fields) <= set(record), sorted(set(fields) - set(record))
    for name in ("email", "username", "first_name", "last_name"):
        assert isinstance(record[name], str), name
    assert isinstance(record["confirmed"], bool) and isinstance(record["locked"], bool)
    if remote:
        assert isinstance(record["temp_ticket"], str) and record["temp_ticket"]
    if record["guid"] is None:
        assert remote, "only remote results describe people without an account"
        assert record["user_role"] in ("", None)
        for name in TIME_FIELDS:
            assert record[name] == blank, (name, record[name])
        return
    assert GUID.match(record["guid"])
    assert record["user_role"] in ("viewer", "publisher", "administrator")
    assert_timestamp(record["created_time"])
    assert_timestamp(record["updated_time"])
    assert_timestamp(record["active_time"], blank=blank)


def fraction_digits(timestamp: str) -> int:
    match = TIMESTAMP.match(timestamp)
    assert match is not None
    return len(match.group(2) or "")


# -- the repository's copy of the table -----------------------------------------------------


def test_the_table_is_connects_2023_09_table() -> None:
    entries = json.loads((DATA / "connect-error-codes-2023.09.json").read_text("utf-8"))
    assert len(entries) == 195 == len(TABLE)
    assert sorted(TABLE) == list(range(1, 196))
    assert all(set(e) == {"code", "message", "http_status"} for e in entries)
    assert TABLE[8] == (
        409,
        "The requested username is already in use. Usernames are case sensitive. Please "
        "ensure you are using the correct case.",
    )
    assert TABLE[64][0] == 400 and TABLE[24][0] == 401 and TABLE[153][0] == 404
    assert "source" in (DATA / "README.md").read_text("utf-8").lower()


# -- user records ----------------------------------------------------------------------------


@pytest.mark.parametrize(("values", "blank"), [("zero", ZERO_TIME), ("null", None)])
async def test_every_user_record_carries_the_published_fields(
    fake: FakeConnect, http: httpx.AsyncClient, values: str, blank: str | None
) -> None:
    fake.unregistered_values = values
    remote = (await http.get("v1/users/remote", params={"prefix": "jul"})).json()["results"]
    assert {r["guid"] is None for r in remote} == {True, False}
    for record in remote:
        assert_user_record(record, remote=True, blank=blank)
    without = next(r for r in remote if r["guid"] is None)
    assert without["user_role"] == ("" if values == "zero" else None)

    created = await http.put("v1/users", json={"temp_ticket": without["temp_ticket"]})
    assert created.status_code == 200
    local = [
        created.json(),
        (await http.get("v1/user")).json(),
        (await http.get(f"v1/users/{created.json()['guid']}")).json(),
        *(await http.get("v1/users")).json()["results"],
    ]
    for record in local:
        assert_user_record(record, remote=False, blank=blank)
        assert "temp_ticket" not in record
    # Never logged in: no activity time, as `blank` says.
    assert created.json()["active_time"] == blank


async def test_fresh_timestamps_carry_nanoseconds(
    fake: FakeConnect, http: httpx.AsyncClient
) -> None:
    julie = (await http.get("v1/users/remote", params={"prefix": "julie"})).json()["results"][0]
    created = (await http.put("v1/users", json={"temp_ticket": julie["temp_ticket"]})).json()
    assert fraction_digits(created["created_time"]) > 6  # past what Python's parser takes
    assert created["created_time"] == created["updated_time"]
    # A time set to the second is written as Go writes it: no fraction at all.
    fake.add_local_user("sec", created_time=datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert fake.get_local_user("sec")["created_time"] == "2024-01-02T03:04:05Z"  # type: ignore[index]
    fake.add_local_user("micro", created_time=datetime(2024, 1, 2, 3, 4, 5, 120000, tzinfo=UTC))
    assert fake.get_local_user("micro")["created_time"] == "2024-01-02T03:04:05.12Z"  # type: ignore[index]


async def test_unknown_fields_are_on_by_default_and_can_be_switched_off(
    fake: FakeConnect, http: httpx.AsyncClient
) -> None:
    remote = (await http.get("v1/users/remote", params={"prefix": "julia"})).json()["results"]
    assert set(remote[0]) - set(REMOTE_FIELDS) == {"external_id", "future_field"}
    fake.extra_fields = False
    remote = (await http.get("v1/users/remote", params={"prefix": "julia"})).json()["results"]
    assert set(remote[0]) == set(REMOTE_FIELDS)
    assert set((await http.get("v1/user")).json()) == set(USER_FIELDS)


async def test_emails_are_blank_for_a_non_admin_key_when_hidden(
    fake: FakeConnect, http: httpx.AsyncClient
) -> None:
    fake.hide_emails = True
    remote = (await http.get("v1/users/remote", params={"prefix": "julie"})).json()["results"]
    assert remote[0]["email"] == "julie@example.com"  # an administrator's key sees them
    fake.key_role = "publisher"
    remote = (await http.get("v1/users/remote", params={"prefix": "julie"})).json()["results"]
    assert remote[0]["email"] == ""
    assert (await http.get("v1/user")).json()["email"] != ""  # one's own stays


# -- searches --------------------------------------------------------------------------------


async def test_remote_search_is_sorted_by_similarity(http: httpx.AsyncClient) -> None:
    answer = (await http.get("v1/users/remote", params={"prefix": "julie"})).json()
    # username exactly "julie"; then a first name exactly "Julie" (ana); then the last name
    # "Juliet" starts with it. "JULES" and "julia" do not match "julie".
    assert [r["username"] for r in answer["results"]] == ["julie", "ana", "bob"]
    answer = (await http.get("v1/users/remote", params={"prefix": "JUL"})).json()
    # Case-insensitive; usernames starting with the prefix (shorter first) before names.
    assert [r["username"] for r in answer["results"]] == ["JULES", "julia", "julie", "ana", "bob"]
    assert answer["total"] == 5 and answer["current_page"] == 1
    exact = (await http.get("v1/users/remote", params={"prefix": "jules"})).json()["results"]
    assert exact[0]["username"] == "JULES"


async def test_remote_search_limit_and_total(fake: FakeConnect, http: httpx.AsyncClient) -> None:
    answer = (await http.get("v1/users/remote", params={"prefix": "jul", "limit": 2})).json()
    assert len(answer["results"]) == 2 and answer["total"] == 5
    assert (await http.get("v1/users/remote", params={"prefix": "a", "limit": 500})).is_success
    for limit, code in (("0", 13), ("501", 13), ("-1", 13), ("ten", 25)):
        response = await http.get("v1/users/remote", params={"prefix": "j", "limit": limit})
        assert_code(response, code)
    assert_code(await http.get("v1/users/remote"), 12)
    assert_code(await http.get("v1/users/remote", params={"prefix": ""}), 12)
    fake.remote_search_max_results = 4
    assert_code(await http.get("v1/users/remote", params={"prefix": "jul"}), 83)
    assert (await http.get("v1/users/remote", params={"prefix": "julie"})).is_success


async def test_local_search_and_filters(fake: FakeConnect, http: httpx.AsyncClient) -> None:
    long_ago = datetime.now(UTC) - timedelta(days=400)
    fake.add_local_user("julie", "Julie", "Martin", user_role="administrator")
    fake.add_local_user("jules2", "Jules", "Deux", active_time=long_ago)
    fake.add_local_user("julien", "Julien", "Sorel", locked=True)
    fake.add_local_user("newbie", "New", "Julius", active_time=None)

    found = (await http.get("v1/users", params={"prefix": "JULIE"})).json()
    assert [r["username"] for r in found["results"]] == ["julie", "julien"]
    found = (await http.get("v1/users", params={"prefix": "jul", "page_size": 2})).json()
    assert [r["username"] for r in found["results"]] == ["julia", "julie"]
    assert found["total"] == 5 and found["current_page"] == 1
    # A prefix search always answers the first page.
    found = (
        await http.get("v1/users", params={"prefix": "jul", "page_size": 2, "page_number": 3})
    ).json()
    assert found["current_page"] == 1 and found["results"][0]["username"] == "julia"

    def names(answer: httpx.Response) -> list[str]:
        return [r["username"] for r in answer.json()["results"]]

    everyone = await http.get("v1/users", params={"page_size": 500})
    assert everyone.json()["total"] == 6
    page = await http.get("v1/users", params={"page_size": 2, "page_number": 2})
    assert page.json()["current_page"] == 2 and names(page) == names(everyone)[2:4]
    admins = await http.get("v1/users", params={"user_role": "administrator"})
    assert names(admins) == ["connect-bot", "julie"]
    either = await http.get("v1/users", params={"user_role": "publisher|administrator"})
    assert names(either) == ["connect-bot", "julia", "julie"]
    assert names(await http.get("v1/users", params={"account_status": "locked"})) == ["julien"]
    assert names(await http.get("v1/users", params={"account_status": "inactive"})) == [
        "jules2",
        "newbie",
    ]
    licensed = await http.get("v1/users", params={"account_status": "licensed", "page_size": 1})
    assert licensed.json()["total"] == 3  # connect-bot, julia, julie: unlocked, recently active
    both = await http.get("v1/users", params={"account_status": "locked|inactive"})
    assert names(both) == ["jules2", "julien", "newbie"]

    assert_code(await http.get("v1/users", params={"account_status": "gone"}), 115)
    assert_code(await http.get("v1/users", params={"user_role": "owner"}), 112)
    assert_code(await http.get("v1/users", params={"page_size": 501}), 13)
    assert_code(await http.get("v1/users", params={"page_size": 0}), 13)
    assert_code(await http.get("v1/users", params={"page_number": 0}), 13)
    assert_code(await http.get("v1/users", params={"page_size": "x"}), 25)
    fake.key_role = "publisher"
    assert_code(await http.get("v1/users", params={"account_status": "licensed"}), 22)
    assert (await http.get("v1/users", params={"prefix": "jul"})).is_success


# -- errors ----------------------------------------------------------------------------------


async def test_requests_the_api_does_not_have_answer_code_2(http: httpx.AsyncClient) -> None:
    assert_code(await http.get("v1/nothing-here"), 2)
    assert_code(await http.delete("v1/users"), 2)
    assert_code(await http.patch("v1/users/00000000-0000-0000-0000-000000000000"), 2)


async def test_bad_key_and_bad_json(fake: FakeConnect, http: httpx.AsyncClient) -> None:
    assert_code(await http.get("v1/user", headers={"Authorization": "Key nope"}), 24)
    assert_code(await http.get("v1/user", headers={"Authorization": ""}), 24)
    assert_code(await http.put("v1/users", content=b"{not json"), 121)
    assert_code(await http.put("v1/users", json=["temp_ticket"]), 121)
    assert_code(await http.put("v1/users", json={}), 12)


async def test_injected_errors_are_marked_and_published_codes_keep_their_text(
    fake: FakeConnect, http: httpx.AsyncClient
) -> None:
    fake.refuse_next("PUT v1/users", 64)
    response = await http.put("v1/users", json={"temp_ticket": fake.issue_ticket("julie")})
    assert_code(response, 64)
    fake.refuse_next("GET v1/users/remote", 999, status=400, message="Something new.")
    response = await http.get("v1/users/remote", params={"prefix": "j"})
    assert (response.status_code, response.json()["code"]) == (400, 999)
    with pytest.raises(ValueError):
        fake.refuse_next("GET", 999)
    fake.put_error_code = 107
    response = await http.put("v1/users", json={"temp_ticket": fake.issue_ticket("julie")})
    assert_code(response, 107)
    assert [e.injected for e in fake.errors_sent] == [True, True, True]


# -- server_settings -------------------------------------------------------------------------

AUTH_FLAGS = {
    "name": str,
    "external_user_search": bool,
    "external_user_data": bool,
    "external_user_id": bool,
    "groups_enabled": bool,
    "external_group_search": bool,
    "external_group_members": bool,
    "external_group_id": bool,
    "external_group_owner": bool,
    "unique_usernames": bool,
    "name_editable_by": str,
    "email_editable_by": str,
    "role_editable_by": str,
}


@pytest.mark.parametrize(
    ("provider", "name", "user_search", "group_search", "group_members", "roles"),
    [
        ("ldap", "LDAP", True, True, True, "adminandself"),
        ("google", "OAuth2", True, False, False, "adminandself"),
        ("saml", "SAML", False, False, False, "adminandself"),
        ("provider_roles", "LDAP", True, True, True, "provider"),
    ],
)
async def test_server_settings_per_provider(
    fake: FakeConnect,
    http: httpx.AsyncClient,
    provider: str,
    name: str,
    user_search: bool,
    group_search: bool,
    group_members: bool,
    roles: str,
) -> None:
    fake.provider = provider
    settings = (await http.get("server_settings")).json()
    auth = settings["authentication"]
    for flag, kind in AUTH_FLAGS.items():
        assert isinstance(auth[flag], kind), flag
    for flag in ("name_editable_by", "email_editable_by", "role_editable_by"):
        assert auth[flag] in ("admin", "adminandself", "provider")
    assert (auth["name"], auth["external_user_search"]) == (name, user_search)
    assert (auth["external_group_search"], auth["external_group_members"]) == (
        group_search,
        group_members,
    )
    assert auth["role_editable_by"] == roles and auth["groups_enabled"] is True
    license = settings["license"]
    assert isinstance(license["users"], int) and isinstance(license["user-activity-days"], int)
    assert license["users-grace"] in ("true", "false")  # a bool Connect sends as a string
    assert "authentication_name" not in settings  # Connect has only authentication.name

    remote = await http.get("v1/users/remote", params={"prefix": "julie"})
    if user_search:
        assert remote.is_success
    else:
        assert_code(remote, 132)
        assert_code(await http.put("v1/users", json={"temp_ticket": "t"}), 119)


async def test_flags_can_be_overridden_one_by_one(
    fake: FakeConnect, http: httpx.AsyncClient
) -> None:
    fake.authentication["external_user_search"] = False
    assert_code(await http.get("v1/users/remote", params={"prefix": "julie"}), 132)
    fake.license["users"] = 5
    assert (await http.get("server_settings")).json()["license"]["users"] == 5
    fake.provider = "ldap"  # a preset starts again from its own flags
    assert (await http.get("v1/users/remote", params={"prefix": "julie"})).is_success
    fake.authentication_name = "Corporate LDAP"
    auth = (await http.get("server_settings")).json()["authentication"]
    assert auth["name"] == "Corporate LDAP" and auth["external_user_search"] is True
    with pytest.raises(ValueError):
        fake.provider = "kerberos"


# -- keys ------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["publisher", "administrator"])
async def test_publisher_and_admin_keys_search_and_create(
    fake: FakeConnect, http: httpx.AsyncClient, role: str
) -> None:
    fake.key_role = role
    assert (await http.get("v1/user")).json()["user_role"] == role
    julie = (await http.get("v1/users/remote", params={"prefix": "julie"})).json()["results"][0]
    created = await http.put("v1/users", json={"temp_ticket": julie["temp_ticket"]})
    assert created.status_code == 200 and created.json()["user_role"] == "viewer"


async def test_a_viewer_key_may_neither_search_nor_create(
    fake: FakeConnect, http: httpx.AsyncClient
) -> None:
    fake.key_role = "viewer"
    assert_code(await http.get("v1/users/remote", params={"prefix": "julie"}), 22)
    assert_code(await http.put("v1/users", json={"temp_ticket": fake.issue_ticket("julie")}), 22)
    assert fake.get_local_user("julie") is None
    with pytest.raises(ValueError):
        fake.key_role = "owner"


# -- PUT /v1/users/{guid} --------------------------------------------------------------------


async def test_role_change_needs_an_admin_key(fake: FakeConnect, http: httpx.AsyncClient) -> None:
    guid = fake.add_local_user("julie", "Julie", "Martin")
    changed = await http.put(f"v1/users/{guid}", json={"user_role": "publisher"})
    assert changed.status_code == 200
    # The five editable fields, not the whole record: a client must not expect a guid here.
    assert changed.json() == {
        "email": "julie@example.com",
        "username": "julie",
        "first_name": "Julie",
        "last_name": "Martin",
        "user_role": "publisher",
    }
    record = fake.get_local_user("julie")
    assert record is not None and record["updated_time"] > record["created_time"]

    fake.key_role = "publisher"
    assert_code(await http.put(f"v1/users/{guid}", json={"user_role": "viewer"}), 23)
    assert_code(await http.put(f"v1/users/{guid}", json={"first_name": "J"}), 21)
    assert fake.get_local_user("julie")["user_role"] == "publisher"  # type: ignore[index]
    # A user may lower their own role (role_editable_by "adminandself"), never raise it.
    assert_code(
        await http.put(f"v1/users/{fake.owner_guid}", json={"user_role": "administrator"}), 23
    )
    lowered = await http.put(f"v1/users/{fake.owner_guid}", json={"user_role": "viewer"})
    assert lowered.status_code == 200 and fake.key_role == "viewer"


async def test_role_change_codes(fake: FakeConnect, http: httpx.AsyncClient) -> None:
    guid = fake.add_local_user("julie")
    assert_code(await http.put(f"v1/users/{guid}", json={"user_role": "owner"}), 112)
    assert_code(await http.put(f"v1/users/{guid}", json={"user_role": 3}), 121)
    missing = "00000000-0000-4000-8000-000000000000"
    assert_code(await http.put(f"v1/users/{missing}", json={"user_role": "viewer"}), 4)
    # The key's owner is the only administrator.
    assert_code(await http.put(f"v1/users/{fake.owner_guid}", json={"user_role": "viewer"}), 61)
    assert fake.key_role == "administrator"
    await http.put(f"v1/users/{guid}", json={"user_role": "administrator"})
    assert (await http.put(f"v1/users/{guid}", json={"user_role": "viewer"})).is_success
    # Usernames are unique; LDAP owns names and emails.
    assert_code(await http.put(f"v1/users/{guid}", json={"first_name": "Other"}), 21)
    fake.authentication["username_editable_by"] = "admin"
    assert_code(await http.put(f"v1/users/{guid}", json={"username": "julia"}), 8)


async def test_a_provider_that_owns_roles_refuses_role_changes(
    fake: FakeConnect, http: httpx.AsyncClient
) -> None:
    fake.provider = "provider_roles"
    guid = fake.add_local_user("julie")
    assert_code(await http.put(f"v1/users/{guid}", json={"user_role": "publisher"}), 23)
    assert (await http.put(f"v1/users/{guid}", json={"user_role": "viewer"})).is_success  # as is


# -- POST /v1/users/{guid}/lock --------------------------------------------------------------


async def test_lock_and_unlock(fake: FakeConnect, http: httpx.AsyncClient) -> None:
    guid = fake.add_local_user("julie")
    locked = await http.post(f"v1/users/{guid}/lock", json={"locked": True})
    assert (locked.status_code, locked.content) == (200, b"")
    assert fake.get_local_user("julie")["locked"] is True  # type: ignore[index]
    unlocked = await http.post(f"v1/users/{guid}/lock", json={"locked": False})
    assert unlocked.status_code == 200 and fake.get_local_user("julie")["locked"] is False  # type: ignore[index]

    assert_code(await http.post(f"v1/users/{guid}/lock", json={}), 12)
    assert_code(await http.post(f"v1/users/{guid}/lock", json={"locked": "yes"}), 121)
    missing = "00000000-0000-4000-8000-000000000000"
    assert_code(await http.post(f"v1/users/{missing}/lock", json={"locked": True}), 4)
    fake.key_role = "publisher"
    assert_code(await http.post(f"v1/users/{guid}/lock", json={"locked": True}), 49)
    assert fake.get_local_user("julie")["locked"] is False  # type: ignore[index]


async def test_unlocking_on_a_full_licence_is_code_64(
    fake: FakeConnect, http: httpx.AsyncClient
) -> None:
    guid = fake.add_local_user("julie", locked=True)
    fake.license["users"] = 2  # connect-bot and julia are active: every seat is taken
    assert_code(await http.post(f"v1/users/{guid}/lock", json={"locked": False}), 64)
    assert (await http.post(f"v1/users/{guid}/lock", json={"locked": True})).is_success
    fake.license["users"] = 3
    assert (await http.post(f"v1/users/{guid}/lock", json={"locked": False})).is_success


async def test_create_is_not_refused_on_a_full_licence_unless_asked(
    fake: FakeConnect, http: httpx.AsyncClient
) -> None:
    fake.license["users"] = 1
    julie = await http.put("v1/users", json={"temp_ticket": fake.issue_ticket("julie")})
    assert julie.status_code == 200  # a new account takes no seat until its first login
    fake.license_checked_on_create = True
    assert_code(await http.put("v1/users", json={"temp_ticket": fake.issue_ticket("bob")}), 64)
    assert fake.get_local_user("bob") is None


# -- groups ----------------------------------------------------------------------------------


async def test_local_groups_list(fake: FakeConnect, http: httpx.AsyncClient) -> None:
    for name in ("analysts", "Analytics", "admins", "finance"):
        fake.add_group(name)
    found = (await http.get("v1/groups", params={"prefix": "ANAL"})).json()
    assert [g["name"] for g in found["results"]] == ["analysts", "Analytics"]
    assert set(found["results"][0]) == {"guid", "name", "owner_guid"}
    page = (await http.get("v1/groups", params={"page_size": 3, "page_number": 2})).json()
    assert [g["name"] for g in page["results"]] == ["finance"] and page["total"] == 4
    assert_code(await http.get("v1/groups", params={"page_size": 501}), 13)
    fake.authentication["groups_enabled"] = False
    assert_code(await http.get("v1/groups"), 132)


async def test_remote_groups_and_creating_one(fake: FakeConnect, http: httpx.AsyncClient) -> None:
    fake.add_local_user("julie")
    fake.add_directory_group("data-science", members=["julie", "julia", "nobody"])
    fake.add_directory_group("data", members=[])
    fake.add_directory_group("Database admins")
    answer = (await http.get("v1/groups/remote", params={"prefix": "data", "limit": 2})).json()
    assert answer["total"] == 3 and answer["current_page"] == 1
    assert [g["name"] for g in answer["results"]] == ["data", "data-science"]
    row = answer["results"][0]
    assert set(row) == {"guid", "name", "temp_ticket"} and row["guid"] is None
    ticket = next(
        r["temp_ticket"]
        for r in (await http.get("v1/groups/remote", params={"prefix": "data-"})).json()["results"]
    )
    created = await http.put("v1/groups", json={"temp_ticket": ticket})
    assert created.status_code == 200
    group = fake.get_group(created.json()["guid"])
    assert group is not None and group["name"] == "data-science"
    assert len(group["members"]) == 2  # julie and julia have accounts; nobody has not
    again = (await http.get("v1/groups/remote", params={"prefix": "data-"})).json()["results"]
    assert again[0]["guid"] == created.json()["guid"]

    assert_code(await http.put("v1/groups", json={"temp_ticket": again[0]["temp_ticket"]}), 131)
    fake.add_group("Database admins")
    assert_code(
        await http.put(
            "v1/groups", json={"temp_ticket": fake.issue_group_ticket("Database admins")}
        ),
        15,
    )
    stale = fake.issue_group_ticket("data")
    fake.invalidate_tickets()
    assert_code(await http.put("v1/groups", json={"temp_ticket": stale}), 127)
    assert_code(await http.put("v1/groups", json={}), 12)
    assert_code(await http.get("v1/groups/remote"), 12)
    assert_code(await http.get("v1/groups/remote", params={"prefix": "d", "limit": 0}), 13)
    fake.key_role = "publisher"
    assert (await http.get("v1/groups/remote", params={"prefix": "d"})).is_success
    fake.key_role = "viewer"
    assert_code(await http.get("v1/groups/remote", params={"prefix": "d"}), 22)
    assert_code(await http.put("v1/groups", json={"temp_ticket": "x"}), 22)


@pytest.mark.parametrize("provider", ["google", "saml"])
async def test_remote_groups_need_external_group_search(
    fake: FakeConnect, http: httpx.AsyncClient, provider: str
) -> None:
    fake.provider = provider
    fake.add_directory_group("data")
    assert_code(await http.get("v1/groups/remote", params={"prefix": "d"}), 132)
    assert_code(await http.put("v1/groups", json={"temp_ticket": "x"}), 119)


async def test_members_of_a_local_group(fake: FakeConnect, http: httpx.AsyncClient) -> None:
    fake.provider = "google"
    julie = fake.add_local_user("julie")
    group = fake.add_group("analysts")
    added = await http.post(f"v1/groups/{group}/members", json={"user_guid": julie})
    assert (added.status_code, added.content) == (204, b"")
    assert_code(await http.post(f"v1/groups/{group}/members", json={"user_guid": julie}), 16)
    members = (await http.get(f"v1/groups/{group}/members")).json()
    assert [m["username"] for m in members["results"]] == ["julie"] and members["total"] == 1
    assert_user_record(members["results"][0], remote=False)
    removed = await http.delete(f"v1/groups/{group}/members/{julie}")
    assert removed.status_code == 204 and fake.get_group(group)["members"] == []  # type: ignore[index]
    assert_code(await http.delete(f"v1/groups/{group}/members/{julie}"), 17)

    missing = "00000000-0000-4000-8000-000000000000"
    assert_code(await http.post(f"v1/groups/{missing}/members", json={"user_guid": julie}), 4)
    assert_code(await http.post(f"v1/groups/{group}/members", json={"user_guid": missing}), 9)
    assert_code(await http.post(f"v1/groups/{group}/members", json={}), 12)
    assert_code(await http.get(f"v1/groups/{missing}/members"), 4)


async def test_a_publisher_key_edits_only_its_own_groups(
    fake: FakeConnect, http: httpx.AsyncClient
) -> None:
    fake.provider = "saml"
    fake.key_role = "publisher"
    julie = fake.add_local_user("julie")
    theirs = fake.add_group("theirs")
    ours = fake.add_group("ours", owner_guid=fake.owner_guid)
    assert_code(await http.post(f"v1/groups/{theirs}/members", json={"user_guid": julie}), 10)
    assert (await http.post(f"v1/groups/{ours}/members", json={"user_guid": julie})).is_success
    fake.key_role = "administrator"
    assert (await http.post(f"v1/groups/{theirs}/members", json={"user_guid": julie})).is_success


async def test_ldap_group_members_come_from_the_directory(
    fake: FakeConnect, http: httpx.AsyncClient
) -> None:
    julie = fake.add_local_user("julie")
    group = fake.add_group("analysts")
    assert_code(await http.post(f"v1/groups/{group}/members", json={"user_guid": julie}), 132)
    assert_code(await http.delete(f"v1/groups/{group}/members/{julie}"), 132)
    assert_code(await http.get(f"v1/groups/{group}/members"), 132)


# -- faults ----------------------------------------------------------------------------------


async def test_commit_late_commits_after_a_delay_and_answers_after_another(
    fake: FakeConnect, http: httpx.AsyncClient
) -> None:
    fake.put_mode = "commit_late"
    fake.commit_delay, fake.answer_delay = 0.3, 0.3
    started = time.perf_counter()
    put = asyncio.create_task(
        http.put("v1/users", json={"temp_ticket": fake.issue_ticket("julie")})
    )
    await asyncio.sleep(0.15)
    assert fake.get_local_user("julie") is None  # not yet
    await asyncio.sleep(0.3)
    assert fake.get_local_user("julie") is not None and not put.done()  # done, not yet said
    response = await put
    assert response.status_code == 200 and time.perf_counter() - started >= 0.6


async def test_every_write_has_the_put_modes(fake: FakeConnect, http: httpx.AsyncClient) -> None:
    guid = fake.add_local_user("julie")
    group = fake.add_group("analysts")
    fake.authentication["external_group_members"] = False

    fake.write_mode("POST v1/users/*/lock", "commit_then_500")
    assert_code(await http.post(f"v1/users/{guid}/lock", json={"locked": True}), 1)
    assert fake.get_local_user("julie")["locked"] is True  # type: ignore[index]

    fake.write_mode("POST v1/groups/*/members", "fail_500")
    assert_code(await http.post(f"v1/groups/{group}/members", json={"user_guid": guid}), 1)
    assert fake.get_group(group)["members"] == []  # type: ignore[index]
    fake.write_mode("POST v1/groups/*/members", "normal")
    assert (await http.post(f"v1/groups/{group}/members", json={"user_guid": guid})).is_success

    fake.write_mode("PUT v1/users/*", "commit_late")
    fake.commit_delay, fake.answer_delay = 0.2, 0.2
    task = asyncio.create_task(http.put(f"v1/users/{guid}", json={"user_role": "publisher"}))
    await asyncio.sleep(0.1)
    assert fake.get_local_user("julie")["user_role"] == "viewer"  # type: ignore[index]
    await asyncio.sleep(0.2)
    assert fake.get_local_user("julie")["user_role"] == "publisher"  # type: ignore[index]
    assert not task.done() and (await task).status_code == 200
    # The create PUT keeps its own mode: "PUT v1/users/*" does not name "PUT v1/users".
    assert fake.put_mode == "normal"
    assert (await http.put("v1/users", json={"temp_ticket": fake.issue_ticket("bob")})).is_success

    with pytest.raises(ValueError):
        fake.write_mode("PUT v1/users/*", "explode")
    fake.reset_faults()
    assert (await http.put(f"v1/users/{guid}", json={"user_role": "viewer"})).is_success


async def test_a_write_that_commits_then_hangs_times_out_with_the_change_made(
    fake: FakeConnect,
) -> None:
    guid = fake.add_local_user("julie")
    fake.write_mode("PUT v1/users/*", "commit_then_hang")
    async with httpx.AsyncClient(
        transport=fake.transport(),
        base_url=fake.asgi_url + "__api__/",
        headers={"Authorization": f"Key {fake.api_key}"},
    ) as http:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                await http.put(f"v1/users/{guid}", json={"user_role": "publisher"})
    assert fake.get_local_user("julie")["user_role"] == "publisher"  # type: ignore[index]


async def test_5xx_and_latency_per_endpoint(fake: FakeConnect, http: httpx.AsyncClient) -> None:
    guid = fake.add_local_user("julie")
    fake.fail_next("POST v1/users/*/lock", 502, body="Bad Gateway")
    fake.fail_next("GET v1/groups", 503, code=None)
    assert (await http.get("v1/groups")).status_code == 503
    assert (await http.get("v1/groups")).is_success  # once
    response = await http.post(f"v1/users/{guid}/lock", json={"locked": True})
    assert (response.status_code, response.text) == (502, "Bad Gateway")
    assert fake.get_local_user("julie")["locked"] is False  # type: ignore[index]

    fake.latency = {"GET v1/groups/remote": 0.3}
    started = time.perf_counter()
    assert (await http.get("v1/groups")).is_success
    assert time.perf_counter() - started < 0.2
    await http.get("v1/groups/remote", params={"prefix": "d"})
    assert time.perf_counter() - started >= 0.3
