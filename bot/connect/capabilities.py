"""What Connect's login provider allows, from the flags of `GET /__api__/server_settings`.

The bot decides from these flags (remote search or not, groups or not, who owns roles), never from
the provider's name, and says them in words at start and in `connect-user-bot check`.
"""

from __future__ import annotations

from bot.connect.models import ServerSettings
from bot.workflow.models import DirectoryCapabilities


def capabilities(server: ServerSettings) -> DirectoryCapabilities:
    auth, licence = server.authentication, server.license
    roles = auth.role_editable_by if auth else None
    return DirectoryCapabilities(
        provider=server.provider,
        remote_user_search=auth.external_user_search if auth else None,
        groups_enabled=auth.groups_enabled if auth else None,
        remote_group_search=auth.external_group_search if auth else None,
        provider_owns_group_members=auth.external_group_members if auth else None,
        provider_owns_roles=None if roles is None else roles == "provider",
        licensed_users=licence.users if licence else None,
        user_activity_days=licence.user_activity_days if licence else None,
    )


def describe(caps: DirectoryCapabilities) -> str:
    """One line a person reads: "LDAP: remote search available; roles managed by Connect; …"."""
    parts = [_search(caps), _roles(caps), _groups(caps)]
    licence = _licence(caps)
    if licence:
        parts.append(licence)
    return f"{caps.provider}: " + "; ".join(parts)


def _search(caps: DirectoryCapabilities) -> str:
    if caps.remote_user_search is True:
        return "remote search available"
    if caps.remote_user_search is False:
        return "no remote search (accounts are created when people first log in)"
    return "whether remote search works is not said (the bot will try)"


def _roles(caps: DirectoryCapabilities) -> str:
    if caps.provider_owns_roles is True:
        return "roles come from the login provider"
    if caps.provider_owns_roles is False:
        return "roles managed by Connect"
    return "who manages roles is not said"


def _groups(caps: DirectoryCapabilities) -> str:
    if caps.groups_enabled is False:
        return "groups are off"
    if caps.groups_enabled is None:
        return "whether groups are on is not said"
    if caps.provider_owns_group_members:
        return "groups come from the directory" + (
            " (directory groups can be searched)" if caps.remote_group_search else ""
        )
    return "groups managed in Connect"


def _licence(caps: DirectoryCapabilities) -> str:
    if caps.licensed_users is None:
        return ""
    if caps.licensed_users == 0:
        return "no limit on licensed users"
    active = (
        f" (users inactive for {caps.user_activity_days} days do not count)"
        if caps.user_activity_days
        else ""
    )
    return f"a licence for {caps.licensed_users} users{active}"
