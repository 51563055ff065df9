"""What the fake Connect (tests/support/fake_connect.py) takes from Connect's published facts:
the 2023.09 error table, the `authentication` flags each login provider reports in
`GET /__api__/server_settings`, and the licence block beside them.

The error table is tests/support/data/connect-error-codes-2023.09.json (see the README there);
the flags follow the field names of a public client that mirrors Connect's own server_settings
type. Where no source says what a provider reports, the preset says so in a comment.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ERROR_TABLE_FILE = Path(__file__).resolve().parent / "data" / "connect-error-codes-2023.09.json"


def load_error_table(path: Path = ERROR_TABLE_FILE) -> dict[int, tuple[int, str]]:
    """code -> (HTTP status, message), as Connect 2023.09 publishes them."""
    entries = json.loads(path.read_text(encoding="utf-8"))
    return {int(e["code"]): (int(e["http_status"]), str(e["message"])) for e in entries}


ERROR_TABLE: dict[int, tuple[int, str]] = load_error_table()

# The codes the fake answers with, by what it means there. "[?]" marks a choice no source makes
# for that situation: the code is the closest the published table offers.
CODE_INTERNAL = 1
CODE_NO_SUCH_ENDPOINT = 2  # unknown path or method under /__api__/ [?]
CODE_NOT_FOUND = 4  # the object named in the URL path does not exist
CODE_USERNAME_IN_USE = 8
CODE_NO_SUCH_USER = 9  # a user_guid in a request body names nobody [?]
CODE_NOT_YOURS = 10  # a publisher key editing a group its owner does not own [?]
CODE_MISSING_PARAMETER = 12  # prefix / temp_ticket / user_guid / locked missing [?]
CODE_BAD_RANGE = 13  # limit, page_size or page_number outside their range [?]
CODE_GROUP_NAME_IN_USE = 15
CODE_ALREADY_MEMBER = 16
CODE_NOT_A_MEMBER = 17  # removing a member who is not one [?]
CODE_CANNOT_CHANGE = 21  # a non-admin key editing another user's (or a provider's) fields [?]
CODE_NOT_PERMITTED = 22  # the key's role is too low for the endpoint [?]
CODE_ROLE_NOT_PERMITTED = 23
CODE_NOT_AUTHENTICATED = 24
CODE_BAD_PARAMETER = 25  # limit/page_size/page_number not an integer [?]
CODE_LOCK_NOT_PERMITTED = 49
CODE_LAST_ADMIN = 61
CODE_LICENSE_FULL = 64
CODE_TOO_MANY_RESULTS = 83  # more matches than `remote_search_max_results`
CODE_UNKNOWN_ROLE = 112
CODE_UNKNOWN_STATUS = 115  # account_status other than locked|licensed|inactive [?]
CODE_NO_TICKETS = 119  # the provider cannot create users or groups from a ticket
CODE_BAD_JSON = 121
CODE_STALE_TICKET = 127
CODE_GROUP_EXISTS = 131  # the directory group already has a Connect group
# Remote user or group search the provider cannot do; also [?] groups disabled, and group members
# the provider supplies (LDAP).
CODE_PROVIDER_CANNOT = 132

ROLES = ("viewer", "publisher", "administrator")
ROLE_RANK = {role: rank for rank, role in enumerate(ROLES)}
ACCOUNT_STATUSES = ("locked", "licensed", "inactive")

_LDAP: dict[str, Any] = {
    "name": "LDAP",
    "notice": "",
    "warning_delay": 0,
    "handles_credentials": True,
    "handles_login": True,
    "challenge_response_enabled": False,
    "external_user_data": True,
    "external_user_search": True,
    "external_user_id": True,
    "groups_enabled": True,
    "external_group_search": True,
    "external_group_members": True,  # members come from the directory: not editable
    "external_group_id": True,
    "external_group_owner": False,  # [?]
    "unique_usernames": True,
    "name_editable_by": "provider",
    "email_editable_by": "provider",
    "username_editable_by": "provider",
    "role_editable_by": "adminandself",
}

# Presets for `FakeConnect.provider`. Every test may still override one flag
# (`fake.authentication["groups_enabled"] = False`).
PROVIDERS: dict[str, dict[str, Any]] = {
    # LDAP / Active Directory: remote user and group search, groups and members from the directory.
    "ldap": _LDAP,
    # OAuth2 with Google: remote user search, local groups the API may edit, no remote groups.
    "google": {
        **_LDAP,
        "name": "OAuth2",
        "handles_credentials": False,
        "external_group_search": False,
        "external_group_members": False,
        "external_group_id": False,
        "unique_usernames": False,  # [?]
    },
    # SAML: no remote search (GET /v1/users/remote answers code 132); local groups.
    "saml": {
        **_LDAP,
        "name": "SAML",
        "handles_credentials": False,
        "external_user_search": False,
        "external_group_search": False,
        "external_group_members": False,
        "external_group_id": False,
        "unique_usernames": False,  # [?]
    },
    # A directory that also owns roles (role mapping at login): the bot must offer no role.
    "provider_roles": {**_LDAP, "role_editable_by": "provider"},
}

# `users` 0 means no user limit. As Connect's own type marshals it, `users-grace` is a boolean
# sent as a string ("true"/"false").
LICENSE: dict[str, Any] = {
    "status": "activated",
    "type": "local",
    "has-key": True,
    "has-trial": False,
    "users": 0,
    "user-activity-days": 365,
    "users-grace": "false",
}
