"""The RStudio-Connect-Credentials header: parsing (names, GUIDs, missing and null groups,
malformed and oversized values). Resolving GUIDs through Connect:
tests/e2e/test_credentials_resolution.py."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.web.credentials import (
    MAX_GROUPS,
    MAX_HEADER_BYTES,
    ConnectCredentials,
    CredentialsError,
    normalise_entries,
    parse_credentials,
)
from tests.support.audit_data import header

PERSONAL = "Zz-personal-data-marker"


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
