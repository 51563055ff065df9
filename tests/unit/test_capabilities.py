"""What Connect's login provider allows, read from its own flags, never from its name."""

from __future__ import annotations

from typing import Any

import pytest

from bot.connect.capabilities import capabilities, describe
from bot.connect.models import ServerSettings
from bot.workflow.models import DirectoryCapabilities

LDAP: dict[str, Any] = {
    "version": "2023.09.0",
    "authentication": {
        "name": "LDAP",
        "external_user_search": True,
        "external_user_data": True,
        "external_user_id": True,
        "groups_enabled": True,
        "external_group_search": True,
        "external_group_members": True,
        "external_group_id": True,
        "external_group_owner": False,
        "unique_usernames": True,
        "name_editable_by": "provider",
        "email_editable_by": "provider",
        "role_editable_by": "admin",
    },
    "license": {"users": 50, "user-activity-days": 365, "users-grace": 0},
    "a_field_from_the_future": {"x": 1},
}


def caps_of(answer: dict[str, Any]) -> DirectoryCapabilities:
    return capabilities(ServerSettings.model_validate(answer))


def test_ldap_flags() -> None:
    caps = caps_of(LDAP)
    assert caps == DirectoryCapabilities(
        provider="LDAP",
        remote_user_search=True,
        groups_enabled=True,
        remote_group_search=True,
        provider_owns_group_members=True,
        provider_owns_roles=False,
        licensed_users=50,
        user_activity_days=365,
    )
    assert describe(caps) == (
        "LDAP: remote search available; roles managed by Connect; groups come from the directory "
        "(directory groups can be searched); a licence for 50 users (users inactive for 365 days "
        "do not count)"
    )


def test_a_provider_is_judged_by_its_flags_not_its_name() -> None:
    # Named "LDAP", but its flags say no remote search: the flags win.
    answer = {**LDAP, "authentication": {**LDAP["authentication"], "external_user_search": False}}
    assert caps_of(answer).remote_user_search is False
    # Named something new, with remote search: available.
    answer = {"authentication": {"name": "Okta", "external_user_search": True}}
    assert caps_of(answer).remote_user_search is True


def test_saml_without_remote_search_and_roles_from_the_provider() -> None:
    caps = caps_of(
        {
            "authentication": {
                "name": "SAML",
                "external_user_search": False,
                "groups_enabled": True,
                "external_group_search": False,
                "external_group_members": False,
                "role_editable_by": "provider",
            },
            "license": {"users": 0},
        }
    )
    assert caps.remote_user_search is False and caps.provider_owns_roles is True
    assert describe(caps) == (
        "SAML: no remote search (accounts are created when people first log in); roles come "
        "from the login provider; groups managed in Connect; no limit on licensed users"
    )


@pytest.mark.parametrize(
    "answer",
    [
        {},
        {"authentication_name": "LDAP"},
        {"authentication": None, "license": "unlimited"},
        {"authentication": {"name": 5, "external_user_search": "maybe", "groups_enabled": 1}},
        {"version": None, "license": {"users": "lots", "user-activity-days": True}},
    ],
)
def test_older_or_odd_answers_read_as_unknown_never_fail(answer: dict[str, Any]) -> None:
    caps = caps_of(answer)
    assert caps.remote_user_search is None and caps.provider_owns_roles is None
    assert caps.licensed_users is None
    assert "not said" in describe(caps)


def test_text_flags_are_read() -> None:
    caps = caps_of({"authentication": {"name": "LDAP", "external_user_search": "true"}})
    assert caps.remote_user_search is True
