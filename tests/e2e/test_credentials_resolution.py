"""The RStudio-Connect-Credentials header in GUID mode: user and group GUIDs resolved to names
through the fake Connect, cached; names taken as they are in name mode. Parsing the header:
tests/unit/test_credentials.py."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.cache.backend import build_backend
from bot.cache.keyed import KeyedCache
from bot.connect.client import ConnectClient
from bot.web.credentials import (
    ANONYMOUS,
    CredentialsError,
    IdentityUnavailable,
    Visitor,
    VisitorResolver,
    parse_credentials,
)
from tests.support.audit_data import header
from tests.support.fake_connect import FakeConnect


@pytest.fixture
async def connect_client(fake_connect: FakeConnect) -> AsyncIterator[ConnectClient]:
    client = ConnectClient(fake_connect.url, fake_connect.api_key, timeout=2, backoff=0)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def cache() -> AsyncIterator[KeyedCache]:
    keyed = KeyedCache(build_backend(None, namespace="test-credentials"))
    try:
        yield keyed
    finally:
        await keyed.close()


def guid_resolver(client: ConnectClient, cache: KeyedCache) -> VisitorResolver:
    return VisitorResolver(client, cache, use_guid=True)


async def test_name_mode_takes_the_header_as_it_is(connect_client, cache, fake_connect) -> None:
    resolver = VisitorResolver(connect_client, cache, use_guid=False)
    visitor = await resolver.resolve(parse_credentials(header({"user": "ann", "groups": ["g"]})))
    assert visitor == Visitor(username="ann", groups=("g",))
    assert await resolver.resolve(None) is ANONYMOUS
    assert await resolver.group_names(visitor) == ("g",)
    assert fake_connect.count() == 0, "names need no Connect call"


async def test_guid_mode_resolves_user_and_groups_to_names(
    connect_client, cache, fake_connect
) -> None:
    user_guid = fake_connect.add_local_user("carol", "Carol", "C", user_role="publisher")
    eng = fake_connect.add_group("engineering")
    ops = fake_connect.add_group("operations")
    resolver = guid_resolver(connect_client, cache)
    credentials = parse_credentials(header({"user": user_guid.upper(), "groups": [eng, ops]}))

    visitor = await resolver.resolve(credentials)
    assert visitor.username == "carol"
    assert visitor.guid == user_guid.lower()
    assert await resolver.group_names(visitor) == ("engineering", "operations")
    assert await resolver.role_of(visitor) == "publisher"
    assert fake_connect.count("GET", "v1/users/*") == 1
    assert fake_connect.count("GET", "v1/groups/*") == 2

    # Cached by GUID: a second visit (and the role check) ask Connect nothing more.
    fake_connect.reset_calls()
    again = await resolver.resolve(credentials)
    assert again == visitor
    assert await resolver.group_names(again) == ("engineering", "operations")
    assert await resolver.role_of(again) == "publisher"
    assert fake_connect.count() == 0


async def test_guid_mode_accepts_missing_groups(connect_client, cache, fake_connect) -> None:
    user_guid = fake_connect.add_local_user("dave")
    resolver = guid_resolver(connect_client, cache)
    visitor = await resolver.resolve(parse_credentials(header({"user": user_guid})))
    assert visitor.username == "dave" and visitor.groups == ()
    assert await resolver.group_names(visitor) == ()


async def test_unknown_user_guid_is_not_identified(connect_client, cache, fake_connect) -> None:
    resolver = guid_resolver(connect_client, cache)
    stranger = "11111111-2222-4333-8444-555555555555"
    assert await resolver.resolve(parse_credentials(header({"user": stranger}))) is ANONYMOUS
    # Remembered too: a forged GUID does not cost a Connect call per request.
    await resolver.resolve(parse_credentials(header({"user": stranger})))
    assert fake_connect.count("GET", "v1/users/*") == 1


async def test_unknown_group_guids_are_left_out(connect_client, cache, fake_connect) -> None:
    user_guid = fake_connect.add_local_user("erin")
    eng = fake_connect.add_group("engineering")
    gone = "99999999-8888-4777-8666-555555555555"
    resolver = guid_resolver(connect_client, cache)
    visitor = await resolver.resolve(
        parse_credentials(header({"user": user_guid, "groups": [gone, eng]}))
    )
    assert await resolver.group_names(visitor) == ("engineering",)


@pytest.mark.parametrize(
    "value",
    [{"user": "alice"}, {"user": "11111111-2222-4333-8444-555555555555", "groups": ["eng"]}],
    ids=["user-name", "group-name"],
)
async def test_names_in_guid_mode_are_a_client_error(connect_client, cache, value) -> None:
    resolver = guid_resolver(connect_client, cache)
    with pytest.raises(CredentialsError, match="CONNECT_CREDENTIALS_USE_GUID"):
        await resolver.resolve(parse_credentials(header(value)))


async def test_connect_down_is_identity_unavailable(connect_client, cache, fake_connect) -> None:
    user_guid = fake_connect.add_local_user("frank")
    fake_connect.outage = "http_503"
    resolver = guid_resolver(connect_client, cache)
    with pytest.raises(IdentityUnavailable, match="could not be reached"):
        await resolver.resolve(parse_credentials(header({"user": user_guid})))
    # Nothing cached from the failure: once Connect is back, the visitor is known.
    fake_connect.outage = None
    visitor = await resolver.resolve(parse_credentials(header({"user": user_guid})))
    assert visitor.username == "frank"


async def test_refused_key_is_identity_unavailable(cache, fake_connect) -> None:
    user_guid = fake_connect.add_local_user("gina")
    async with ConnectClient(fake_connect.url, "not-the-right-key", timeout=2) as client:
        resolver = guid_resolver(client, cache)
        with pytest.raises(IdentityUnavailable, match="connect-user-bot check"):
            await resolver.resolve(parse_credentials(header({"user": user_guid})))


async def test_role_by_username_in_name_mode(connect_client, cache, fake_connect) -> None:
    fake_connect.add_local_user("root", user_role="administrator")
    resolver = VisitorResolver(connect_client, cache, use_guid=False)
    assert await resolver.role_of(Visitor(username="root")) == "administrator"
    assert await resolver.role_of(Visitor(username="nobody-here")) is None
    assert await resolver.role_of(ANONYMOUS) is None
    fake_connect.reset_calls()
    assert await resolver.role_of(Visitor(username="root")) == "administrator"
    assert fake_connect.count() == 0
