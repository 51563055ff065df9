"""Who may read the audit page.

Allowed: users listed in AUDIT_USERS (names or GUIDs), members of groups in AUDIT_GROUPS (names or
GUIDs), and, when AUDIT_ALLOW_CONNECT_ADMINS is on, Connect administrators. Groups are empty under
LDAP, so the user list (or the administrator rule) must be enough on its own.

Names compare exactly: Connect's usernames are case-sensitive, and a near miss should fail
closed. GUIDs compare case-insensitively. The cheap comparisons run first; Connect is asked only
when one of them cannot decide, and its answers are cached by the resolver.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from bot.web.credentials import Visitor, VisitorResolver, normalise_entries


class AccessDecision(StrEnum):
    ALLOWED = "allowed"
    ANONYMOUS = "anonymous"  # not identified: 401
    FORBIDDEN = "forbidden"  # identified, not on any list: 403


@dataclass(frozen=True, slots=True)
class AccessResult:
    decision: AccessDecision
    reason: str  # for the log: which rule allowed or that none did

    @property
    def allowed(self) -> bool:
        return self.decision is AccessDecision.ALLOWED


class AuditAccess:
    def __init__(
        self,
        resolver: VisitorResolver,
        *,
        users: Iterable[str],
        groups: Iterable[str],
        allow_connect_admins: bool,
    ) -> None:
        self._resolver = resolver
        self._user_names, self._user_guids = normalise_entries(users)
        self._group_names, self._group_guids = normalise_entries(groups)
        self._allow_admins = allow_connect_admins

    async def decide(self, visitor: Visitor) -> AccessResult:
        """May raise IdentityUnavailable when only Connect could answer and it cannot."""
        if not visitor.identified:
            return AccessResult(AccessDecision.ANONYMOUS, "not identified")
        reason = self._direct_match(visitor) or await self._looked_up_match(visitor)
        if reason is not None:
            return AccessResult(AccessDecision.ALLOWED, reason)
        return AccessResult(AccessDecision.FORBIDDEN, "on no audit list")

    def _direct_match(self, visitor: Visitor) -> str | None:
        """What the header alone decides: no Connect call."""
        if visitor.username in self._user_names:
            return "AUDIT_USERS (name)"
        if visitor.guid is not None and visitor.guid in self._user_guids:
            return "AUDIT_USERS (GUID)"
        if self._resolver.use_guid:
            if any(group in self._group_guids for group in visitor.groups):
                return "AUDIT_GROUPS (GUID)"
        elif any(group in self._group_names for group in visitor.groups):
            return "AUDIT_GROUPS (name)"
        return None

    async def _looked_up_match(self, visitor: Visitor) -> str | None:
        resolver = self._resolver
        if self._user_guids and visitor.guid is None:
            # Name mode with GUIDs configured: name the configured accounts, not the visitor,
            # so the answer is cached per entry and shared by every visitor.
            for guid in self._user_guids:
                account = await resolver.account_by_guid(guid)
                if account is not None and account.username == visitor.username:
                    return "AUDIT_USERS (GUID)"
        if visitor.groups:
            if resolver.use_guid and self._group_names:
                names = await resolver.group_names(visitor)
                if any(name in self._group_names for name in names):
                    return "AUDIT_GROUPS (name)"
            if not resolver.use_guid and self._group_guids:
                for guid in self._group_guids:
                    name = await resolver.group_name(guid)
                    if name is not None and name in visitor.groups:
                        return "AUDIT_GROUPS (GUID)"
        if self._allow_admins and await resolver.role_of(visitor) == "administrator":
            return "Connect administrator"
        return None
