"""ConnectClient against the fake Connect in process (ASGITransport). On a real port:
tests/e2e/test_connect_client_on_a_port.py."""

from __future__ import annotations

import logging
import time
import traceback
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

import bot.connect.client as client_module
from bot.connect.client import ConnectClient
from bot.connect.directory import problem_kind
from bot.connect.errors import (
    ConnectAPIError,
    ConnectError,
    ConnectProtocolError,
    ConnectUnavailable,
)
from bot.connect.models import ConnectUser
from bot.workflow.ports import DirectoryProblem
from tests.support.connect_client import (
    KEY,
    ODD_PREFIXES,
    TIMEOUT,
    assert_no_secret,
    error_text,
    make_fake,
)
from tests.support.fake_connect import FakeConnect


def asgi_client(fake: FakeConnect, **kwargs: object) -> ConnectClient:
    options: dict[str, object] = {"timeout": TIMEOUT, "backoff": 0.0, "transport": fake.transport()}
    options.update(kwargs)
    return ConnectClient(fake.asgi_url, fake.api_key, **options)  # type: ignore[arg-type]


@pytest.fixture
def fake() -> FakeConnect:
    return make_fake()


@pytest.fixture
async def client(fake: FakeConnect) -> AsyncIterator[ConnectClient]:
    async with asgi_client(fake) as c:
        yield c


# -- URLs ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("server_url", "expected"),
    [
        ("https://connect.example.com", "https://connect.example.com/__api__/"),
        ("https://connect.example.com/", "https://connect.example.com/__api__/"),
        ("https://connect.example.com//", "https://connect.example.com/__api__/"),
        ("https://example.com/rsc", "https://example.com/rsc/__api__/"),
        ("https://example.com/rsc/", "https://example.com/rsc/__api__/"),
        ("https://example.com/rsc/__api__", "https://example.com/rsc/__api__/"),
        ("http://127.0.0.1:3939/", "http://127.0.0.1:3939/__api__/"),
    ],
)
async def test_base_url_is_normalised(server_url: str, expected: str) -> None:
    async with ConnectClient(server_url, KEY) as c:
        assert c.base_url == expected
        assert KEY not in repr(c)


@pytest.mark.parametrize(
    "server_url", ["ftp://connect.example.com", "connect.example.com", "", "https://h/?x=1"]
)
def test_bad_server_url_is_rejected(server_url: str) -> None:
    with pytest.raises(ValueError):
        ConnectClient(server_url, KEY)


@pytest.mark.parametrize("api_key", ["", "   ", "two words", "caf\u00e9", "a\nb"])
def test_bad_api_key_is_rejected_without_echo(api_key: str) -> None:
    with pytest.raises(ValueError) as info:
        ConnectClient("https://connect.example.com", api_key)
    if api_key.strip():
        assert api_key not in str(info.value)


@pytest.mark.parametrize("server_path", ["rsc", "rsc/"])
async def test_sub_path_reaches_the_api(server_path: str) -> None:
    fake = make_fake(sub_path="/rsc")
    url = "http://connect.test/" + server_path
    async with ConnectClient(url, KEY, transport=fake.transport()) as c:
        me = await c.current_user()
    assert me.guid == fake.owner_guid
    assert [(call.method, call.path) for call in fake.calls] == [("GET", "/__api__/v1/user")]


# -- remote search ---------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ODD_PREFIXES)
async def test_prefix_reaches_the_server_exactly(
    fake: FakeConnect, client: ConnectClient, prefix: str
) -> None:
    await client.search_remote(prefix, limit=7)
    (call,) = fake.calls
    assert call.path == "/__api__/v1/users/remote"
    assert call.query == {"prefix": prefix, "limit": "7"}


async def test_search_parses_results(fake: FakeConnect, client: ConnectClient) -> None:
    guid = fake.add_local_user("julia", "Julia", "Roberts", user_role="publisher")
    result = await client.search_remote("jul", limit=20)
    by_name = {u.username: u for u in result.results}
    # "jul" matches julie, julie2, julia by username and bob by last name (case-insensitive)
    assert set(by_name) == {"julie", "julie2", "julia", "bob"}
    assert result.total == 4 and result.current_page == 1
    assert by_name["julie"].guid is None and not by_name["julie"].has_account
    assert by_name["julie"].full_name == "Julie Martin"
    assert by_name["julia"].guid == guid and by_name["julia"].user_role == "publisher"
    for user in result.results:  # every row carries a fresh base64-looking ticket
        assert user.temp_ticket and "+" in user.temp_ticket and "/" in user.temp_ticket
        assert user.temp_ticket not in repr(user)


async def test_search_limit_and_total(fake: FakeConnect, client: ConnectClient) -> None:
    result = await client.search_remote("JULIE", limit=1)
    assert len(result.results) == 1 and result.total == 3  # julie, julie2, bob Juliet


async def test_search_parses_null_and_zero_fields() -> None:
    body = {
        "results": [
            {
                "guid": None,
                "username": "nobody",
                "first_name": None,
                "last_name": None,
                "email": None,
                "user_role": None,
                "created_time": None,
                "updated_time": "0001-01-01T00:00:00Z",
                "active_time": 0,
                "confirmed": None,
                "locked": None,
                "temp_ticket": "ab+/cd==",
                "unknown_new_field": {"x": 1},
            }
        ],
        "current_page": 1,
        "total": None,
    }
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=body))
    async with ConnectClient("https://c.example.com", KEY, transport=transport) as c:
        result = await c.search_remote("nob", limit=5)
    (user,) = result.results
    assert user.guid is None and user.first_name == "" and user.email == ""
    assert user.temp_ticket == "ab+/cd=="
    assert result.total == 0


@pytest.mark.parametrize("limit", [0, -1, 501, 10_000, True, 1.5, "20"])
async def test_limit_is_validated_before_sending(
    fake: FakeConnect, client: ConnectClient, limit: object
) -> None:
    with pytest.raises(ValueError):
        await client.search_remote("julie", limit=limit)  # type: ignore[arg-type]
    assert fake.calls == []


@pytest.mark.parametrize("limit", [1, 500])
async def test_limit_bounds_are_accepted(client: ConnectClient, limit: int) -> None:
    await client.search_remote("julie", limit=limit)


async def test_empty_prefix_is_rejected(fake: FakeConnect, client: ConnectClient) -> None:
    with pytest.raises(ValueError):
        await client.search_remote("", limit=5)
    assert fake.calls == []


async def test_find_remote_user_needs_an_exact_username(
    fake: FakeConnect, client: ConnectClient
) -> None:
    julie = await client.find_remote_user("julie")
    assert julie is not None and julie.username == "julie"
    assert (await client.find_remote_user("julie2")).username == "julie2"  # type: ignore[union-attr]
    assert await client.find_remote_user("jul") is None  # prefix of several, exact of none
    assert await client.find_remote_user("JULIE") is None  # usernames are case-sensitive
    assert fake.calls[0].query == {"prefix": "julie", "limit": "500"}


@pytest.mark.parametrize(
    ("code", "kind"),
    [(132, DirectoryProblem.PROVIDER_CANNOT), (83, DirectoryProblem.TOO_MANY_RESULTS)],
)
async def test_remote_search_error_codes(
    fake: FakeConnect, client: ConnectClient, code: int, kind: DirectoryProblem
) -> None:
    fake.remote_search_error_code = code
    with pytest.raises(ConnectAPIError) as info:
        await client.search_remote("j", limit=20)
    assert (info.value.status, info.value.code) == (400, code)
    assert problem_kind(info.value) is kind
    assert fake.count("GET", "v1/users/remote") == 1  # a 4xx is not retried


# -- local accounts --------------------------------------------------------------------------


async def test_find_user_needs_an_exact_username(fake: FakeConnect, client: ConnectClient) -> None:
    fake.add_local_user("julie2", "Julie", "Dupont")
    assert await client.find_user("julie") is None
    guid = fake.add_local_user("julie", "Julie", "Martin")
    found = await client.find_user("julie")
    assert found is not None and found.guid == guid and found.full_name == "Julie Martin"
    assert fake.calls[-1].query == {"prefix": "julie", "page_size": "500"}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # Connect writes nanoseconds, which Python's own parser refuses.
        ("2023-12-05T17:24:10.123456789Z", datetime(2023, 12, 5, 17, 24, 10, 123456, tzinfo=UTC)),
        ("2023-12-05T17:24:10Z", datetime(2023, 12, 5, 17, 24, 10, tzinfo=UTC)),
        ("2023-12-05T18:24:10.5+01:00", datetime(2023, 12, 5, 17, 24, 10, 500000, tzinfo=UTC)),
        ("2023-12-05T17:24:10", datetime(2023, 12, 5, 17, 24, 10, tzinfo=UTC)),
        ("0001-01-01T00:00:00Z", None),  # Connect's zero time: not known
        (None, None),
        (0, None),
        ("yesterday", None),
        ("2023-13-45T99:00:00Z", None),
    ],
)
def test_created_time_is_read_leniently(raw: object, expected: datetime | None) -> None:
    user = ConnectUser.model_validate({"guid": "g", "username": "u", "created_time": raw})
    assert user.created_time == expected
    assert expected is None or user.created_time.tzinfo is not None  # type: ignore[union-attr]


async def test_found_user_carries_connects_created_time(
    fake: FakeConnect, client: ConnectClient
) -> None:
    when = datetime(2024, 2, 29, 23, 59, 58, 123456, tzinfo=UTC)
    fake.add_local_user("julie", "Julie", "Martin", created_time=when)
    found = await client.find_user("julie")
    assert found is not None and found.created_time == when
    created = await client.create_from_ticket(fake.issue_ticket("bob"))
    assert created.created_time is not None
    assert abs(created.created_time - datetime.now(UTC)) < timedelta(minutes=1)


async def test_get_user_group_current_user_and_settings(
    fake: FakeConnect, client: ConnectClient
) -> None:
    guid = fake.add_local_user("julie")
    group_guid = fake.add_group("analysts")
    assert (await client.get_user(guid)).username == "julie"
    assert (await client.get_group(group_guid)).name == "analysts"
    me = await client.current_user()
    assert me.guid == fake.owner_guid and me.user_role == "administrator"
    settings = await client.server_settings()
    assert settings.version == fake.version
    assert fake.calls[-1].path == "/__api__/server_settings"
    with pytest.raises(ConnectAPIError) as info:
        await client.get_user(str(uuid.uuid4()))
    assert (info.value.status, info.value.code) == (404, 4)


async def test_server_settings_name_the_provider(client: ConnectClient) -> None:
    assert (await client.server_settings()).provider == "LDAP"


@pytest.mark.parametrize(
    "guid", ["", "abc", "../user", "v1/user", f"{uuid.uuid4()}/../x", f" {uuid.uuid4()}", "%2e%2e"]
)
async def test_guid_is_validated_before_it_reaches_a_path(
    fake: FakeConnect, client: ConnectClient, guid: str
) -> None:
    with pytest.raises(ValueError):
        await client.get_user(guid)
    with pytest.raises(ValueError):
        await client.get_group(guid)
    assert fake.calls == []


# -- create from ticket ----------------------------------------------------------------------


async def test_create_from_ticket(fake: FakeConnect, client: ConnectClient) -> None:
    julie = await client.find_remote_user("julie")
    assert julie is not None
    user = await client.create_from_ticket(julie.temp_ticket)
    assert user.username == "julie" and user.user_role == "viewer"
    assert fake.get_local_user("julie")["guid"] == user.guid  # type: ignore[index]
    put = fake.calls_for("PUT", "v1/users")
    assert len(put) == 1 and put[0].json == {"temp_ticket": julie.temp_ticket}
    assert put[0].query == {}
    # The account now shows up in a remote search too.
    assert (await client.find_remote_user("julie")).guid == user.guid  # type: ignore[union-attr]


async def test_username_in_use_is_code_8(fake: FakeConnect, client: ConnectClient) -> None:
    fake.add_local_user("julie")
    julie = await client.find_remote_user("julie")
    with pytest.raises(ConnectAPIError) as info:
        await client.create_from_ticket(julie.temp_ticket)  # type: ignore[union-attr]
    assert (info.value.status, info.value.code) == (409, 8)
    assert problem_kind(info.value) is DirectoryProblem.USERNAME_TAKEN


async def test_stale_ticket_is_code_127_and_a_new_search_fixes_it(
    fake: FakeConnect, client: ConnectClient
) -> None:
    stale = await client.find_remote_user("julie")
    fake.invalidate_tickets()
    with pytest.raises(ConnectAPIError) as info:
        await client.create_from_ticket(stale.temp_ticket)  # type: ignore[union-attr]
    assert (info.value.status, info.value.code) == (400, 127)
    assert fake.get_local_user("julie") is None
    fresh = await client.find_remote_user("julie")
    assert (await client.create_from_ticket(fresh.temp_ticket)).username == "julie"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("code", "status", "kind"),
    [
        (119, 400, DirectoryProblem.PROVIDER_CANNOT),
        (132, 400, DirectoryProblem.PROVIDER_CANNOT),
        (21, 403, DirectoryProblem.NOT_PERMITTED),
        (24, 401, DirectoryProblem.NOT_PERMITTED),
    ],
)
async def test_configuration_errors_on_create(
    fake: FakeConnect, client: ConnectClient, code: int, status: int, kind: DirectoryProblem
) -> None:
    fake.put_error_code = code
    with pytest.raises(ConnectAPIError) as info:
        await client.create_from_ticket(fake.issue_ticket("julie"))
    assert (info.value.status, info.value.code) == (status, code)
    assert problem_kind(info.value) is kind
    assert fake.count("PUT") == 1


async def test_wrong_key_is_401_code_24_and_not_retried(fake: FakeConnect) -> None:
    async with ConnectClient(fake.asgi_url, "wrong-key", transport=fake.transport()) as c:
        with pytest.raises(ConnectAPIError) as info:
            await c.current_user()
    assert (info.value.status, info.value.code) == (401, 24)
    assert problem_kind(info.value) is DirectoryProblem.NOT_PERMITTED
    assert fake.count() == 1 and not fake.calls[0].authorized


@pytest.mark.parametrize("mode", ["fail_500", "commit_then_500"])
async def test_put_is_never_retried_on_5xx(
    fake: FakeConnect, client: ConnectClient, mode: str
) -> None:
    fake.put_mode = mode
    with pytest.raises(ConnectUnavailable) as info:
        await client.create_from_ticket(fake.issue_ticket("julie"))
    assert (info.value.reason, info.value.status) == ("server_error", 500)
    assert fake.count("PUT", "v1/users") == 1
    assert (fake.get_local_user("julie") is not None) is (mode == "commit_then_500")


async def test_put_is_never_retried_on_429(fake: FakeConnect, client: ConnectClient) -> None:
    fake.fail_next("PUT v1/users", 429, retry_after=1)
    with pytest.raises(ConnectUnavailable) as info:
        await client.create_from_ticket(fake.issue_ticket("julie"))
    assert (info.value.reason, info.value.retry_after) == ("rate_limited", 1.0)
    assert fake.count("PUT") == 1


async def test_put_that_hangs_times_out_once(fake: FakeConnect, client: ConnectClient) -> None:
    fake.put_mode = "hang"
    started = time.perf_counter()
    with pytest.raises(ConnectUnavailable) as info:
        await client.create_from_ticket(fake.issue_ticket("julie"))
    assert info.value.reason == "timeout"
    assert time.perf_counter() - started < TIMEOUT + 0.5
    assert fake.count("PUT") == 1 and fake.get_local_user("julie") is None


# -- retries and failures on reads -----------------------------------------------------------


async def test_get_timeouts_are_retried_then_unavailable(fake: FakeConnect) -> None:
    fake.latency = {"GET v1/user": 0.4}
    async with asgi_client(fake, timeout=0.1, read_retries=2) as c:
        with pytest.raises(ConnectUnavailable) as info:
            await c.current_user()
    assert info.value.reason == "timeout"
    assert fake.count("GET", "v1/user") == 3


async def test_get_recovers_after_transient_5xx(fake: FakeConnect, client: ConnectClient) -> None:
    fake.fail_next("GET", 503, times=2, body="Service Unavailable")
    assert (await client.current_user()).guid == fake.owner_guid
    assert fake.count("GET", "v1/user") == 3


@pytest.mark.parametrize(("outage", "status"), [("http_500", 500), ("http_503", 503)])
async def test_server_errors_after_retries(
    fake: FakeConnect, client: ConnectClient, outage: str, status: int
) -> None:
    fake.outage = outage
    with pytest.raises(ConnectUnavailable) as info:
        await client.search_remote("julie", limit=5)
    assert (info.value.reason, info.value.status) == ("server_error", status)
    assert fake.count("GET", "v1/users/remote") == 3


async def test_retry_after_is_honoured(fake: FakeConnect, client: ConnectClient) -> None:
    fake.fail_next("v1/users/remote", 429, retry_after=0.25)
    started = time.perf_counter()
    await client.search_remote("julie", limit=5)
    assert time.perf_counter() - started >= 0.25
    assert fake.count("GET", "v1/users/remote") == 2


async def test_retry_after_is_capped(
    fake: FakeConnect, client: ConnectClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_module, "MAX_RETRY_AFTER", 0.05)
    fake.fail_next("GET", 429, retry_after=3600, times=2)
    started = time.perf_counter()
    with pytest.raises(ConnectUnavailable):
        await asgi_client(fake, read_retries=1).current_user()
    assert time.perf_counter() - started < 1
    assert (await client.current_user()).guid == fake.owner_guid


async def test_malformed_body_is_a_protocol_error(fake: FakeConnect, client: ConnectClient) -> None:
    fake.malformed = True
    with pytest.raises(ConnectProtocolError) as info:
        await client.search_remote("julie", limit=5)
    assert "not JSON" in str(info.value) and "sign in" not in str(info.value)
    assert fake.count() == 1  # not retried: asking again gets the same answer


async def test_missing_results_is_a_protocol_error(
    fake: FakeConnect, client: ConnectClient
) -> None:
    fake.missing_fields = "v1/users/remote"
    with pytest.raises(ConnectProtocolError) as info:
        await client.search_remote("julie", limit=5)
    assert "results" in str(info.value)
    with pytest.raises(ConnectProtocolError):
        await client.find_remote_user("julie")
    assert (await client.current_user()).guid  # other paths unaffected


async def test_missing_guid_is_a_protocol_error_without_input_values(
    fake: FakeConnect, client: ConnectClient
) -> None:
    fake.missing_fields = "PUT"
    ticket = fake.issue_ticket("julie")
    with pytest.raises(ConnectProtocolError) as info:
        await client.create_from_ticket(ticket)
    text = error_text(info.value)
    assert "guid" in str(info.value)
    assert "julie" not in text and "Martin" not in text  # pydantic's input echo stays out
    assert_no_secret(text, ticket)


async def test_non_json_error_body_is_tolerated(fake: FakeConnect, client: ConnectClient) -> None:
    fake.fail_next("GET v1/users/*", 404, body="<html>Not here</html>")
    with pytest.raises(ConnectAPIError) as info:
        await client.get_user(str(uuid.uuid4()))
    assert (info.value.status, info.value.code) == (404, None)


async def test_redirect_is_reported_not_followed() -> None:
    transport = httpx.MockTransport(
        lambda request: httpx.Response(301, headers={"Location": "https://elsewhere/"})
    )
    async with ConnectClient("http://c.example.com", KEY, transport=transport) as c:
        with pytest.raises(ConnectProtocolError, match="CONNECT_SERVER"):
            await c.current_user()


async def test_in_process_refusal_is_a_connection_error(
    fake: FakeConnect, client: ConnectClient
) -> None:
    fake.outage = "refuse"
    with pytest.raises(ConnectUnavailable) as info:
        await client.current_user()
    assert info.value.reason == "connection"
    fake.outage = None
    assert (await client.current_user()).guid == fake.owner_guid


# -- secrets ---------------------------------------------------------------------------------


async def test_secrets_never_reach_errors_or_logs(
    fake: FakeConnect, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    ticket = fake.issue_ticket("julie")
    errors: list[ConnectError] = []
    async with asgi_client(fake, read_retries=1) as c:

        async def expect_error(call: object) -> None:
            try:
                await call  # type: ignore[misc]
            except ConnectError as exc:
                errors.append(exc)
            else:
                raise AssertionError("expected a ConnectError")

        fake.invalidate_tickets()
        await expect_error(c.create_from_ticket(ticket))  # 127
        fake.put_mode = "hang"
        await expect_error(c.create_from_ticket(ticket))  # timeout
        fake.put_mode = "fail_500"
        await expect_error(c.create_from_ticket(ticket))  # 500
        fake.put_mode = "normal"
        fake.malformed = True
        await expect_error(c.create_from_ticket(fake.issue_ticket("julie")))
        fake.malformed = False
        fake.outage = "refuse"
        await expect_error(c.create_from_ticket(ticket))
        await expect_error(c.current_user())
        fake.outage = None
        fake.latency = 0.4
        await expect_error(c.current_user())
        fake.latency = 0.0
        fake.fail_next("GET", 429, times=2, retry_after=0)
        await expect_error(c.server_settings())

    # A server that echoes what it was sent must not get the ticket or key into our errors.
    def echo(request: httpx.Request) -> httpx.Response:
        text = f"bad ticket {request.content.decode()} with {request.headers['Authorization']}"
        return httpx.Response(400, json={"code": 127, "error": text, "payload": None})

    async with ConnectClient(
        "https://c.example.com", KEY, transport=httpx.MockTransport(echo)
    ) as c:
        await expect_error(c.create_from_ticket(ticket))

    assert len(errors) == 9
    for exc in errors:
        assert_no_secret(error_text(exc), ticket)
    assert caplog.records, "the client logs per-call lines at DEBUG"
    assert any(r.name == "bot.connect.client" for r in caplog.records)
    for record in caplog.records:
        assert record.levelno <= logging.DEBUG or record.name != "bot.connect.client"
        assert_no_secret(record.getMessage(), ticket)
        if record.exc_info:
            assert_no_secret("".join(traceback.format_exception(*record.exc_info)), ticket)


def test_ticket_is_hidden_from_model_repr() -> None:
    from bot.connect.models import RemoteUser

    user = RemoteUser(username="julie", temp_ticket="ab+/cd==")
    assert "ab+/cd==" not in repr(user) and "ab+/cd==" not in str(user)
