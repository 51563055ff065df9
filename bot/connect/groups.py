"""The workflow's `GroupDirectory` port, carried out by the Connect client: directory (LDAP)
groups and Connect's own, and their members. Failures become the workflow's errors through the
same translation as the people's (`bot.connect.directory.translated`)."""

from __future__ import annotations

from bot.connect.client import MAX_LIMIT, ConnectClient, is_guid
from bot.connect.directory import translated
from bot.connect.errors import ConnectAPIError
from bot.connect.models import ConnectGroup, RemoteGroup
from bot.workflow.models import DirectoryGroup, DirectoryGroupPage, GroupRef
from bot.workflow.ports import DirectoryProblem, DirectoryRefused


class ConnectGroups:
    """`bot.workflow.ports.GroupDirectory` over a `ConnectClient`."""

    def __init__(self, client: ConnectClient) -> None:
        self.client = client

    async def search_directory_groups(self, prefix: str, *, limit: int) -> DirectoryGroupPage:
        result = await translated(
            lambda: self.client.search_remote_groups(prefix, limit=min(limit, MAX_LIMIT))
        )
        return DirectoryGroupPage(
            groups=tuple(_directory_group(found) for found in result.results),
            total=max(result.total, len(result.results)),
        )

    async def find_directory_groups(self, name: str) -> tuple[DirectoryGroup, ...]:
        result = await translated(lambda: self.client.search_remote_groups(name, limit=MAX_LIMIT))
        if result.total > len(result.results):
            # A second group of that name may be on a page not read: "one group of that name"
            # cannot be told, so it is not claimed (the caller refuses or waits).
            raise DirectoryRefused(
                DirectoryProblem.TOO_MANY_RESULTS,
                f"more than {len(result.results)} directory groups start with that name",
                "Too many directory groups start with this name to tell them apart.",
            )
        return tuple(_directory_group(found) for found in result.results if found.name == name)

    async def create_group(self, temp_ticket: str) -> GroupRef:
        created = await translated(lambda: self.client.create_group_from_ticket(temp_ticket))
        return _ref(created)

    async def find_group(self, name: str) -> GroupRef | None:
        result = await translated(lambda: self.client.search_groups(name, limit=MAX_LIMIT))
        return next((_ref(group) for group in result.results if group.name == name), None)

    async def get_group(self, guid: str) -> GroupRef | None:
        if not is_guid(guid):
            return None  # no group has such a GUID; and it must not reach a URL path
        found = await translated(lambda: self._group_or_none(guid))
        return None if found is None else _ref(found)

    async def _group_or_none(self, guid: str) -> ConnectGroup | None:
        try:
            return await self.client.get_group(guid)
        except ConnectAPIError as exc:
            if exc.status == 404:  # code 4 or 153: no such group
                return None
            raise

    async def list_groups(self, prefix: str, *, limit: int) -> tuple[GroupRef, ...]:
        result = await translated(
            lambda: self.client.search_groups(prefix, limit=min(limit, MAX_LIMIT))
        )
        return tuple(_ref(group) for group in result.results)

    async def add_member(self, group_guid: str, user_guid: str) -> bool:
        try:
            await translated(lambda: self.client.add_group_member(group_guid, user_guid))
        except DirectoryRefused as exc:
            if exc.kind is DirectoryProblem.ALREADY_MEMBER:  # code 16: done already
                return False
            raise
        return True


def _directory_group(found: RemoteGroup) -> DirectoryGroup:
    return DirectoryGroup(name=found.name, guid=found.guid or None, temp_ticket=found.temp_ticket)


def _ref(group: ConnectGroup) -> GroupRef:
    return GroupRef(guid=group.guid, name=group.name)
