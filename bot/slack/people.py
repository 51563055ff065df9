"""Who may search and who may decide, asked of Slack.

Decisions rest on answers no older than `approver_max_age` seconds (APPROVER_CHECK_MAX_AGE_SECONDS):
the approver channel's settings, its members (read to the last page of `conversations.members`
before anyone is judged not to be a member) and the clicker's profile. Those answers grant rights,
so they live in this process only — never in Redis, where whoever can write could make themselves
an approver — with one look-up in flight per key, so a burst of clicks is one Slack call. Events
(`member_joined_channel`, `member_left_channel`, `user_change`, `channel_shared`) drop them early;
events can be lost, and the maximum age holds regardless.

Only full members of the bot's own organisation decide: not guests, not people from another
organisation (another Enterprise Grid org, or without one another workspace than the bot's, from
`auth.test`), not bots or apps, not deactivated accounts. When any of that cannot be known, the
answer is "cannot check", never a guess.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.cache.fresh import FreshAnswers
from bot.workflow.models import SlackIdentity
from bot.workflow.ports import (
    ApproverCheckUnavailable,
    ApproverVerdict,
    PersonLookupUnavailable,
)

log = logging.getLogger(__name__)

MEMBERS_PAGE_SIZE = 1000
TRY_AGAIN = "Please try again in a minute."


class MembershipUnavailable(Exception):
    """Slack could not say who is in a channel (missing scope, bot not in a private channel…)."""


class SlackUnavailable(Exception):
    """Slack could not answer a question about a person, a channel or the bot itself."""


class ApproverChannelRefused(Exception):
    """The approver channel is public and APPROVER_CHANNEL_ALLOW_PUBLIC does not say that is
    meant: the bot refuses to start. The message names the channel and the ways out."""


@dataclass(frozen=True, slots=True)
class Profile:
    """What decisions need from `users.info`, nothing more."""

    id: str
    team_id: str | None
    enterprise_id: str | None
    deleted: bool
    is_bot: bool
    is_app_user: bool
    is_restricted: bool
    is_ultra_restricted: bool
    is_stranger: bool

    @property
    def is_guest(self) -> bool:
        return self.is_restricted or self.is_ultra_restricted


@dataclass(frozen=True, slots=True)
class Home:
    """The bot's own workspace and organisation (`auth.test`)."""

    team_id: str | None
    enterprise_id: str | None


@dataclass(frozen=True, slots=True)
class ChannelInfo:
    id: str
    name: str
    is_private: bool
    # Slack Connect: shared with (or invited to) another organisation.
    shared_externally: bool

    @property
    def label(self) -> str:
        return f"#{self.name} ({self.id})" if self.name else self.id


def public_channel_message(channel: ChannelInfo) -> str:
    return (
        f"The approver channel {channel.label} is public: anyone in the workspace can join it "
        "and approve requests. Make it private (channel settings → Change to a private "
        "channel), or, if everyone who can join it is meant to approve, set "
        "APPROVER_CHANNEL_ALLOW_PUBLIC=true."
    )


def shared_channel_message(channel: ChannelInfo) -> str:
    return (
        f"The approver channel {channel.label} is shared with another organisation (Slack "
        "Connect). Its members from other organisations are refused when they press Approve or "
        "Deny: only full members of this organisation decide."
    )


def channel_info(channel_id: str, answer: dict[str, Any]) -> ChannelInfo:
    """A `conversations.info` channel object, read conservatively: a flag that is missing
    counts against the channel (not private, shared)."""
    shared_externally = bool(
        answer.get("is_ext_shared")
        or answer.get("is_pending_ext_shared")
        # is_shared alone is also set for channels shared within an Enterprise Grid org.
        or (answer.get("is_shared") and not answer.get("is_org_shared"))
    )
    return ChannelInfo(
        id=channel_id,
        name=str(answer.get("name") or ""),
        is_private=answer.get("is_private") is True,
        shared_externally=shared_externally,
    )


class SlackPeople:
    def __init__(
        self,
        client: AsyncWebClient,
        *,
        approver_channel: str,
        approver_usergroup: str | None = None,
        admin_approver_usergroup: str | None = None,
        search_channel: str | None = None,
        allow_guests: bool = False,
        allow_public_approver_channel: bool = False,
        approver_max_age: float = 15.0,
        membership_ttl: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.approver_channel = approver_channel
        # When set, the user group is who may decide (the channel only receives the cards), and
        # requests granting Administrator need the admin group too.
        self.approver_usergroup = approver_usergroup
        self.admin_approver_usergroup = admin_approver_usergroup
        self.search_channel = search_channel
        self.allow_guests = allow_guests
        self.allow_public_approver_channel = allow_public_approver_channel
        self.approver_max_age = approver_max_age
        # Who may *search* (the search channel's members, guest and organisation checks) may be
        # older (MEMBERSHIP_CACHE_TTL): it shows directory data, it grants no decision.
        self.search_max_age = membership_ttl
        self._answers = FreshAnswers(clock=clock)

    # -- deciders ------------------------------------------------------------------------------

    async def approver_verdict(self, user_id: str, *, grants: str | None = None) -> ApproverVerdict:
        max_age = self.approver_max_age
        try:
            if self.approver_usergroup:
                # The group is the boundary: a public approver channel is acceptable then.
                members = await self.usergroup_members(self.approver_usergroup, max_age=max_age)
                if user_id not in members:
                    return ApproverVerdict.NOT_IN_USERGROUP
            else:
                channel = await self._channel(self.approver_channel, max_age=max_age)
                if not channel.is_private and not self.allow_public_approver_channel:
                    log.error("%s", public_channel_message(channel))
                    return ApproverVerdict.UNSAFE_CHANNEL
                members = await self.channel_members(self.approver_channel, max_age=max_age)
                if user_id not in members:
                    return ApproverVerdict.NOT_MEMBER
            if grants == "administrator" and self.admin_approver_usergroup:
                admins = await self.usergroup_members(
                    self.admin_approver_usergroup, max_age=max_age
                )
                if user_id not in admins:
                    return ApproverVerdict.NOT_ADMIN_APPROVER
            profile = await self._profile(user_id, max_age=max_age)
            verdict = self._person_verdict(profile, await self._home())
        except (SlackUnavailable, MembershipUnavailable) as exc:
            log.error("cannot check who may approve: %s", exc)
            raise ApproverCheckUnavailable(str(exc)) from None
        if verdict is not ApproverVerdict.APPROVER:
            log.info("%s is in the approver channel but may not decide: %s", user_id, verdict)
        return verdict

    @staticmethod
    def _person_verdict(profile: Profile, home: Home) -> ApproverVerdict:
        if profile.deleted:
            return ApproverVerdict.DEACTIVATED
        if profile.is_bot or profile.is_app_user:
            return ApproverVerdict.BOT
        if profile.is_guest:
            return ApproverVerdict.GUEST
        if _is_external(profile, home):
            return ApproverVerdict.EXTERNAL
        return ApproverVerdict.APPROVER

    # -- the approver channel itself -----------------------------------------------------------

    async def check_approver_channel(self) -> ChannelInfo | None:
        """Read the approver channel afresh and say what is wrong with it.

        Raises ApproverChannelRefused when it is public and that was not declared intended.
        A channel shared with another organisation is logged as a warning. None when Slack
        cannot say (logged): decisions are then refused as "cannot check" until it can.
        """
        self._answers.invalidate(("channel", self.approver_channel))
        try:
            channel = await self._channel(self.approver_channel, max_age=self.approver_max_age)
        except SlackUnavailable as exc:
            log.error(
                "cannot read the approver channel %s (%s): Approve and Deny are refused until "
                "it can be read; run `connect-user-bot check`",
                self.approver_channel,
                exc,
            )
            return None
        if not channel.is_private and self.approver_usergroup:
            log.info(
                "the approver channel %s is public; only members of the user group %s decide",
                channel.label,
                self.approver_usergroup,
            )
        elif not channel.is_private:
            if not self.allow_public_approver_channel:
                raise ApproverChannelRefused(public_channel_message(channel))
            log.warning(
                "the approver channel %s is public; APPROVER_CHANNEL_ALLOW_PUBLIC=true says "
                "anyone who joins it is meant to approve",
                channel.label,
            )
        if channel.shared_externally:
            log.warning("%s", shared_channel_message(channel))
        return channel

    async def recheck_approver_channel(self) -> None:
        """After `channel_shared`/`channel_unshared`: the channel and its members changed."""
        self._answers.invalidate(("members", self.approver_channel))
        try:
            await self.check_approver_channel()
        except ApproverChannelRefused as exc:
            # Running already: decisions are refused (UNSAFE_CHANNEL) until it is fixed.
            log.error("%s", exc)

    async def _channel(self, channel: str, *, max_age: float) -> ChannelInfo:
        async def read() -> ChannelInfo:
            try:
                response = await self.client.conversations_info(channel=channel)
            except SlackApiError as exc:
                raise SlackUnavailable(f"conversations.info: {exc.response.get('error')}") from None
            except Exception as exc:  # connection errors, timeouts
                raise SlackUnavailable(f"conversations.info: {type(exc).__name__}") from None
            return channel_info(channel, response.get("channel") or {})

        return await self._answers.get(("channel", channel), read, max_age=max_age)

    # -- events: answers that changed ----------------------------------------------------------

    def forget_members(self, channel: str) -> None:
        self._answers.invalidate(("members", channel))

    def forget_profile(self, user_id: str) -> None:
        self._answers.invalidate(("user", user_id))

    def forget_usergroup(self, usergroup: str) -> None:
        self._answers.invalidate(("usergroup", usergroup))

    # -- membership ----------------------------------------------------------------------------

    async def channel_members(self, channel: str, *, max_age: float) -> frozenset[str]:
        return await self._answers.get(
            ("members", channel), lambda: self._read_members(channel), max_age=max_age
        )

    async def usergroup_members(self, usergroup: str, *, max_age: float) -> frozenset[str]:
        return await self._answers.get(
            ("usergroup", usergroup), lambda: self._read_usergroup(usergroup), max_age=max_age
        )

    async def _read_usergroup(self, usergroup: str) -> frozenset[str]:
        """usergroups.users.list answers every member at once (the method takes no cursor)."""
        try:
            answer = await self.client.usergroups_users_list(usergroup=usergroup)
        except SlackApiError as exc:
            raise MembershipUnavailable(
                f"usergroups.users.list: {exc.response.get('error')}"
            ) from None
        except Exception as exc:  # connection errors, timeouts
            raise MembershipUnavailable(type(exc).__name__) from None
        return frozenset(str(user) for user in answer.get("users") or [])

    async def _read_members(self, channel: str) -> frozenset[str]:
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
                return frozenset(members)

    # -- searchers -----------------------------------------------------------------------------

    async def search_refusal(self, user_id: str) -> str | None:
        """None when the user may search the directory, otherwise a polite reason.

        Fails closed: when Slack cannot say whether someone is a guest or from another
        organisation, they are asked to try again rather than shown directory data."""
        if not self.allow_guests:
            try:
                profile = await self._profile(user_id, max_age=self.search_max_age)
            except SlackUnavailable:
                return (
                    "I couldn't look up your Slack account just now, so I can't show directory "
                    f"data. {TRY_AGAIN}"
                )
            if profile.is_guest:
                return "Directory search isn't available to guest accounts."
            try:
                external = _is_external(profile, await self._home())
            except SlackUnavailable as exc:
                log.warning("cannot tell a searcher's organisation: %s", exc)
                return (
                    "I couldn't check which organisation your Slack account belongs to just now, "
                    f"so I can't show directory data. {TRY_AGAIN}"
                )
            if external:
                return "Directory search isn't available to people from other organisations."
        if self.search_channel:
            try:
                members = await self.channel_members(
                    self.search_channel, max_age=self.search_max_age
                )
            except MembershipUnavailable:
                return "I can't check who may search right now; ask an admin to check the bot."
            if user_id not in members:
                return f"Directory search is limited to members of <#{self.search_channel}>."
        return None

    # -- the person a request is for ------------------------------------------------------------

    async def person_id(self, email: str) -> str | None:
        """The workspace member with this email (users.lookupByEmail), so that they cannot
        decide a request for their own access; None when there is none (or only a bot or a
        deactivated account). Raises PersonLookupUnavailable when Slack cannot say."""
        try:
            response = await self.client.users_lookupByEmail(email=email)
        except SlackApiError as exc:
            error = exc.response.get("error")
            if error in ("users_not_found", "user_not_found"):
                return None
            raise PersonLookupUnavailable(f"users.lookupByEmail: {error}") from None
        except Exception as exc:
            raise PersonLookupUnavailable(f"users.lookupByEmail: {type(exc).__name__}") from None
        user = response.get("user") or {}
        if not user.get("id") or user.get("deleted") or user.get("is_bot"):
            return None
        return str(user["id"])

    async def is_active_member(self, user_id: str) -> bool:
        """Whether Slack says now (no remembered answer) that the member is not deactivated;
        False when Slack cannot say (a lock question then stays for the approvers)."""
        try:
            response = await self.client.users_info(user=user_id)
        except Exception as exc:
            log.warning("users.info failed: %s", type(exc).__name__)
            return False
        user = response.get("user") or {}
        return user.get("deleted") is False

    async def identity(self, user_id: str) -> SlackIdentity | None:
        """The email and name on the profile (users.info, read now: a person asking for their
        own account is matched by it, so an old answer could match someone's former email)."""
        try:
            response = await self.client.users_info(user=user_id)
        except SlackApiError as exc:
            raise PersonLookupUnavailable(f"users.info: {exc.response.get('error')}") from None
        except Exception as exc:
            raise PersonLookupUnavailable(f"users.info: {type(exc).__name__}") from None
        profile = (response.get("user") or {}).get("profile") or {}
        email = str(profile.get("email") or "").strip()
        if not email:
            return None
        return SlackIdentity(
            email=email,
            first_name=str(profile.get("first_name") or "").strip(),
            last_name=str(profile.get("last_name") or "").strip(),
        )

    # -- profiles and the bot's own organisation -----------------------------------------------

    async def _profile(self, user_id: str, *, max_age: float) -> Profile:
        async def read() -> Profile:
            try:
                response = await self.client.users_info(user=user_id)
            except SlackApiError as exc:
                raise SlackUnavailable(f"users.info: {exc.response.get('error')}") from None
            except Exception as exc:
                raise SlackUnavailable(f"users.info: {type(exc).__name__}") from None
            user = response.get("user") or {}
            return Profile(
                id=str(user.get("id") or user_id),
                team_id=user.get("team_id") or None,
                enterprise_id=(user.get("enterprise_user") or {}).get("enterprise_id") or None,
                deleted=bool(user.get("deleted")),
                is_bot=bool(user.get("is_bot")),
                is_app_user=bool(user.get("is_app_user")),
                is_restricted=bool(user.get("is_restricted")),
                is_ultra_restricted=bool(user.get("is_ultra_restricted")),
                is_stranger=bool(user.get("is_stranger")),
            )

        return await self._answers.get(("user", user_id), read, max_age=max_age)

    async def _home(self) -> Home:
        """The bot's team and enterprise; a success is kept for the process, a failure never."""

        async def read() -> Home:
            try:
                auth = await self.client.auth_test()
            except SlackApiError as exc:
                raise SlackUnavailable(f"auth.test: {exc.response.get('error')}") from None
            except Exception as exc:
                raise SlackUnavailable(f"auth.test: {type(exc).__name__}") from None
            home = Home(auth.get("team_id") or None, auth.get("enterprise_id") or None)
            if home.team_id is None and home.enterprise_id is None:
                raise SlackUnavailable("auth.test named no team")
            return home

        return await self._answers.get(("home",), read, max_age=math.inf)

    async def slack_identity(self) -> str | None:
        """The bot's Slack organisation and team, to name cache entries derived from Slack so
        that two deployments sharing one Redis never share them; None when Slack cannot say."""
        try:
            home = await self._home()
        except SlackUnavailable:
            return None
        return f"{home.enterprise_id or ''}/{home.team_id or ''}"


def _is_external(profile: Profile, home: Home) -> bool:
    """From another organisation? Raises SlackUnavailable when the profile cannot tell.

    Enterprise Grid: the same enterprise is the same organisation, whatever the workspace.
    Otherwise the person's workspace must be the bot's. `is_stranger` only ever adds a refusal:
    Slack sets it only for people the app cannot see, so its absence proves nothing.
    """
    if profile.is_stranger:
        return True
    if home.enterprise_id and profile.enterprise_id:
        return profile.enterprise_id != home.enterprise_id
    if not profile.team_id or not home.team_id:
        raise SlackUnavailable("the profile names no team")
    return profile.team_id != home.team_id
