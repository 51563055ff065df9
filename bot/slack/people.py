"""Who may search and who may approve, asked of Slack and cached briefly.

Membership is read to the last page of `conversations.members` before anyone is judged not to be
a member, and is cached under keys built from the channel id (shared across replicas on Redis).
"""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.cache import KeyedCache, cache_key
from bot.workflow.ports import ApproverCheckUnavailable

log = logging.getLogger(__name__)

MEMBERS_PAGE_SIZE = 1000


class MembershipUnavailable(Exception):
    """Slack could not say who is in a channel (missing scope, bot not in a private channel…)."""


class SlackPeople:
    def __init__(
        self,
        client: AsyncWebClient,
        cache: KeyedCache,
        *,
        approver_channel: str,
        search_channel: str | None = None,
        allow_guests: bool = False,
        membership_ttl: float = 60.0,
        profile_ttl: float = 300.0,
    ) -> None:
        self.client = client
        self.cache = cache
        self.approver_channel = approver_channel
        self.search_channel = search_channel
        self.allow_guests = allow_guests
        self.membership_ttl = membership_ttl
        self.profile_ttl = profile_ttl
        self._home_team: tuple[str | None, str | None] | None = None

    # -- approvers -----------------------------------------------------------------------------

    async def is_approver(self, user_id: str) -> bool:
        try:
            members = await self.channel_members(self.approver_channel)
        except MembershipUnavailable as exc:
            log.error("cannot read the approver channel's members: %s", exc)
            raise ApproverCheckUnavailable(str(exc)) from None
        if user_id not in members:
            return False
        profile = await self.user_info(user_id)
        if profile is None:
            raise ApproverCheckUnavailable("users.info failed")
        # Deactivated accounts can linger in member lists; bots never approve.
        return not profile.get("deleted", False) and not profile.get("is_bot", False)

    async def channel_members(self, channel: str) -> frozenset[str]:
        members = await self.cache.get_or_compute(
            "members:" + cache_key(channel),
            lambda: self._read_members(channel),
            ttl=self.membership_ttl,
            dump=sorted,
            load=list,
        )
        return frozenset(members)

    async def _read_members(self, channel: str) -> list[str]:
        members: list[str] = []
        cursor: str | None = None
        while True:
            try:
                page = await self.client.conversations_members(
                    channel=channel, limit=MEMBERS_PAGE_SIZE, cursor=cursor
                )
            except SlackApiError as exc:
                raise MembershipUnavailable(str(exc.response.get("error"))) from None
            except Exception as exc:  # connection errors, timeouts
                raise MembershipUnavailable(type(exc).__name__) from None
            members.extend(page.get("members") or [])
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                return members

    # -- searchers -----------------------------------------------------------------------------

    async def search_refusal(self, user_id: str) -> str | None:
        """None when the user may search the directory, otherwise a polite reason."""
        profile = await self.user_info(user_id)
        if profile is None:
            return "I couldn't look up your Slack account just now, so I can't show directory data."
        if not self.allow_guests:
            if profile.get("is_restricted") or profile.get("is_ultra_restricted"):
                return "Directory search isn't available to guest accounts."
            if await self._is_external(profile):
                return "Directory search isn't available to people from other organisations."
        if self.search_channel:
            try:
                members = await self.channel_members(self.search_channel)
            except MembershipUnavailable:
                return "I can't check who may search right now; ask an admin to check the bot."
            if user_id not in members:
                return f"Directory search is limited to members of <#{self.search_channel}>."
        return None

    async def _is_external(self, profile: dict[str, Any]) -> bool:
        if profile.get("is_stranger"):
            return True
        home_team, home_enterprise = await self._home()
        if home_team is None or profile.get("team_id") in (None, home_team):
            return False
        enterprise = (profile.get("enterprise_user") or {}).get("enterprise_id")
        return not (home_enterprise and enterprise == home_enterprise)

    async def _home(self) -> tuple[str | None, str | None]:
        if self._home_team is None:
            try:
                auth = await self.client.auth_test()
            except SlackApiError as exc:
                log.warning("auth.test failed: %s", exc.response.get("error"))
                return None, None
            self._home_team = (auth.get("team_id"), auth.get("enterprise_id"))
        return self._home_team

    async def user_info(self, user_id: str) -> dict[str, Any] | None:
        async def read() -> dict[str, Any] | None:
            try:
                response = await self.client.users_info(user=user_id)
            except SlackApiError as exc:
                log.warning("users.info failed: %s", exc.response.get("error"))
                return None
            user = response.get("user") or {}
            # Only what decisions need: keep the cache small and free of personal data.
            return {
                "id": user.get("id"),
                "team_id": user.get("team_id"),
                "deleted": bool(user.get("deleted")),
                "is_bot": bool(user.get("is_bot")),
                "is_restricted": bool(user.get("is_restricted")),
                "is_ultra_restricted": bool(user.get("is_ultra_restricted")),
                "is_stranger": bool(user.get("is_stranger")),
                "enterprise_user": {
                    "enterprise_id": (user.get("enterprise_user") or {}).get("enterprise_id")
                },
            }

        return await self.cache.get_or_compute(
            "user:" + cache_key(user_id), read, ttl=self.profile_ttl
        )
