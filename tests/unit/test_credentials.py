"""The RStudio-Connect-Credentials header: parsing (names, GUIDs, missing and null groups,
malformed and oversized values) and GUID resolution through a fake Connect, cached."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.cache import KeyedCache, build_backend
from bot.connect.client import ConnectClient
from bot.web.credentials import (
    ANONYMOUS,
    MAX_GROUPS,
    MAX_HEADER_BYTES,
    ConnectCredentials,
    CredentialsError,
    IdentityUnavailable,
    Visitor,
    VisitorResolver,
    normalise_entries,
    parse_credentials,
)
from tests.support.fake_connect import FakeConnect

PERSONAL = "Zz-personal-data-marker"


def header(value: object) -> str:
    """What Starlette hands over: the header's bytes decoded as latin-1."""
    return json.dumps(value, ensure_ascii=False).encode("utf-8").decode("latin-1")


# -- parsing -------------------------------------------------------------------------------------


def test_names_and_groups() -> None:
    credentials = parse_credentials(header({"user": "alice", "groups": ["eng", "ops"]}))
    assert credentials == ConnectCredentials(user="alice", groups=("eng", "ops"))
    assert credentials.username == "alice"
    assert credentials.group_list == ("eng", "ops")


@pytest.mark.parametrize(
    "value",
    [{"user": "alice"}, {"user": "alice", "groups": None}, {"user": "alice", "groups": []}],
    ids=["missing", "null", "empty"],
)
def test_groups_may_be_missing_null_or_empty_as_ldap_sends_them(value: dict) -> None:
    credentials = parse_credentials(header(value))
    assert credentials is not None
    assert credentials.username == "alice"
    assert credentials.group_list == ()


@pytest.mark.parametrize("raw", [None, "", "   "])
def test_no_header_is_an_anonymous_visitor(raw: str | None) -> None:
    assert parse_credentials(raw) is None


@pytest.mark.parametrize("value", [{"user": None}, {"user": ""}, {}, {"groups": ["eng"]}])
def test_null_or_empty_user_is_anonymous(value: dict) -> None:
    credentials = parse_credentials(header(value))
    assert credentials is not None and credentials.username is None


def test_unknown_keys_are_ignored_and_empty_group_names_dropped() -> None:
    credentials = parse_credentials(
        header({"user": "bob", "groups": ["", "eng"], "session": {"x": 1}})
    )
    assert credentials is not None
    assert credentials.group_list == ("eng",)


def test_utf8_names_survive_starlettes_latin1_decoding() -> None:
    credentials = parse_credentials(header({"user": "zoë", "groups": ["Équipe ✓"]}))
    assert credentials is not None
    assert credentials.username == "zoë"
    assert credentials.group_list == ("Équipe ✓",)
    assert parse_credentials(header({"user": "zoë"}).encode("latin-1")).username == "zoë"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (f"{PERSONAL} not json", "not valid UTF-8 JSON"),
        ('{"user": "alice"', "not valid UTF-8 JSON"),
        (b'{"user": "\xff\xfe"}', "not valid UTF-8 JSON"),
        (header([PERSONAL]), "must be a JSON object"),
        (header(PERSONAL), "must be a JSON object"),
        (header(None), "must be a JSON object"),
        (header({"user": 42}), "user must be a string"),
        (header({"user": [PERSONAL]}), "user must be a string"),
        (header({"user": True}), "user must be a string"),
        (header({"user": "a", "groups": PERSONAL}), "groups must be a list of strings"),
        (header({"user": "a", "groups": [1, 2]}), "groups must be a list of strings"),
        (header({"user": "a", "groups": {"eng": True}}), "groups must be a list of strings"),
        (header({"user": "a", "groups": [None]}), "groups must be a list of strings"),
        (header({"user": "a" * 300}), "user is longer than 256 characters"),
        (header({"user": "a", "groups": ["g" * 300]}), "longer than 256 characters"),
    ],
)
def test_malformed_headers_are_client_errors_that_never_echo_the_value(
    raw: str | bytes, expected: str
) -> None:
    with pytest.raises(CredentialsError) as caught:
        parse_credentials(raw)
    message = str(caught.value)
    assert expected in message
    assert "RStudio-Connect-Credentials" in message
    assert PERSONAL not in message
    assert caught.value.__cause__ is None and caught.value.__context__ is None


@pytest.mark.parametrize(
    "raw", ["[" * 4000 + "]" * 4000, '{"user": ' + "[" * 4000 + "]" * 4000 + "}", "{" * 8000]
)
def test_deep_nesting_is_a_client_error_not_a_crash(raw: str) -> None:
    with pytest.raises(CredentialsError, match=r"nested too deeply|not valid UTF-8 JSON"):
        parse_credentials(raw)


def test_oversized_header_is_refused_before_parsing() -> None:
    raw = header({"user": "alice", "groups": ["x" * 100] * 90})
    assert len(raw) > MAX_HEADER_BYTES
    with pytest.raises(CredentialsError, match=r"at most 8192 are accepted"):
        parse_credentials(raw)


def test_too_many_groups() -> None:
    groups = [f"g{i}" for i in range(MAX_GROUPS + 1)]
    raw = header({"user": "alice", "groups": groups})
    assert len(raw) < MAX_HEADER_BYTES
    with pytest.raises(CredentialsError, match=f"more than {MAX_GROUPS} entries"):
        parse_credentials(raw)
    assert parse_credentials(header({"user": "alice", "groups": groups[:MAX_GROUPS]}))


@given(st.one_of(st.binary(max_size=300), st.text(max_size=300)), st.booleans())
def test_any_value_parses_or_is_a_credentials_error(raw: bytes | str, as_starlette: bool) -> None:
    if isinstance(raw, str) and as_starlette:
        raw = raw.encode("utf-8").decode("latin-1")
    with contextlib.suppress(CredentialsError):
        parse_credentials(raw)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
        max_leaves=12,
    )
)
def test_any_json_parses_or_is_a_credentials_error(value: object) -> None:
    for document in (value, {"user": value}, {"user": "u", "groups": value}):
        with contextlib.suppress(CredentialsError):
            parse_credentials(header(document))


def test_configured_entries_split_into_names_and_guids() -> None:
    guid = "0D5B6F2C-8E9A-4C1B-9F3D-2A7E6B5C4D3E"
    names, guids = normalise_entries(["alice", f" {guid} ", "", "alice", "Bob"])
    assert names == ("alice", "Bob")
    assert guids == (guid.lower(),)


# -- resolution through Connect ------------------------------------------------------------------


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
