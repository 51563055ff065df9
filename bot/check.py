"""`connect-user-bot check`: will this configuration work? Plain words; non-zero on trouble."""

from __future__ import annotations

import sys
from typing import TextIO

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.connect.capabilities import capabilities, describe
from bot.connect.client import ConnectClient
from bot.connect.errors import ConnectAPIError, ConnectError
from bot.connect.seats import ConnectSeats
from bot.runtime import build_slack_client
from bot.settings import Settings
from bot.slack.people import channel_info, public_channel_message, shared_channel_message
from bot.slack.ui.seats import seats_in_use
from bot.store.database import create_engine
from bot.store.migrate import is_up_to_date
from bot.store.urls import redact_url
from bot.workflow.approvals import ApprovalsRequired
from bot.workflow.models import DirectoryCapabilities
from bot.workflow.ports import DirectoryError


class Report:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.problems = 0

    def ok(self, text: str) -> None:
        print(f"  ok    {text}", file=self.out)

    def warn(self, text: str) -> None:
        print(f"  warn  {text}", file=self.out)

    def fail(self, text: str) -> None:
        self.problems += 1
        print(f"  FAIL  {text}", file=self.out)


async def run_checks(settings: Settings, out: TextIO = sys.stdout) -> int:
    report = Report(out)
    print(f"Connect at {settings.connect_server}", file=out)
    await _check_connect(settings, report)
    print(f"Slack at {settings.slack_api_url}", file=out)
    await _check_slack(settings, report)
    print(f"Database {redact_url(settings.database_url)}", file=out)
    await _check_database(settings, report)
    if report.problems:
        print(f"\n{report.problems} problem(s) found.", file=out)
        return 1
    print("\nEverything the bot needs is in place.", file=out)
    return 0


async def _check_connect(settings: Settings, report: Report) -> None:
    async with ConnectClient(
        settings.connect_server,
        settings.connect_api_key.get_secret_value(),
        timeout=settings.connect_timeout,
        read_retries=0,
    ) as connect:
        try:
            owner = await connect.current_user()
        except ConnectAPIError as exc:
            if exc.status == 401:
                report.fail("Connect rejected CONNECT_API_KEY (401): create a new key.")
            else:
                report.fail(f"Connect refused GET /v1/user: {exc}")
            return
        except ConnectError as exc:
            report.fail(f"Connect could not be reached: {exc}")
            return
        role = owner.user_role or "unknown"
        report.ok(f"the API key belongs to {owner.username} (role: {role})")
        _report_key_rights(owner.username, role, report)
        if role == "administrator":
            await _check_seats(connect, settings, report)
        try:
            server = await connect.server_settings()
        except ConnectError as exc:
            report.warn(f"could not read server settings ({type(exc).__name__})")
            return
        caps = capabilities(server)
        report.ok(f"Connect {server.version or '(version hidden)'}, {describe(caps)}")
        if caps.remote_user_search is False:
            report.warn(
                f"{caps.provider} has no remote user search: /connect-user search lists existing "
                "accounts (for role changes) and says new ones are created at first login."
            )
        elif caps.remote_user_search is None:
            report.warn(
                "Connect did not say whether its login provider can search the directory (an "
                "older version?); the bot will try, and say so if it cannot."
            )
        _report_groups(caps, role, report)


def _report_groups(caps: DirectoryCapabilities, role: str, report: Report) -> None:
    """What the bot can do with groups here: bring directory groups in, add members."""
    if caps.groups_enabled is False:
        report.ok("groups are off in Connect: request forms offer no groups")
        return
    if caps.remote_group_search:
        report.ok("directory groups can be brought into Connect: /connect-user group search")
    if caps.provider_owns_group_members:
        report.ok("group membership comes from the login provider: request forms offer no groups")
    elif caps.provider_owns_group_members is False and caps.groups_enabled:
        if role == "administrator":
            report.ok("request forms offer Connect groups, and the bot adds the account to them")
        else:
            report.warn(
                "adding people to Connect groups needs an administrator's key (a publisher's "
                "may only change groups its owner owns): request forms offer no groups and "
                "Join groups is not offered."
            )


def _report_key_rights(username: str, role: str, report: Report) -> None:
    """What the key lets the bot do, and how each feature that needs more degrades."""
    if role == "administrator":
        report.ok(
            "an administrator's key: the bot can create accounts, set and change roles, lock "
            "and unlock accounts, and count licence seats (SECURITY.md: what such a key allows "
            "if it leaks)"
        )
    elif role == "publisher":
        report.warn(
            "a publisher's key: the bot can search the directory and create accounts only. The "
            "request form offers no role (accounts get Connect's default role), role changes "
            "are refused, lock and unlock are unavailable (/connect-user lock and unlock say so, "
            "and no card offers to lock a person deactivated in Slack), and cards and "
            "/connect-user seats show no licence seats: those need an administrator's key "
            "(SECURITY.md weighs the two)."
        )
    else:
        report.fail(
            f"{username} is a {role}: nothing works with this key. Searching the directory and "
            "creating accounts need a publisher's or administrator's key; roles, lock and "
            "unlock, and licence seats an administrator's."
        )


async def _check_seats(connect: ConnectClient, settings: Settings, report: Report) -> None:
    """The seat counts an approver will see, read as the bot reads them."""
    try:
        seats = await ConnectSeats(connect, timeout=settings.connect_timeout).seats()
    except DirectoryError as exc:
        report.warn(f"could not count licence seats: {exc.problem}")
        return
    inactive = f"{seats.inactive} inactive and {seats.locked} locked account(s) take no seat"
    if seats.full:
        report.warn(
            f"licence seats: {seats_in_use(seats)} ({inactive}): people whose accounts are new "
            "will not be able to log in until a seat is freed"
        )
    else:
        report.ok(f"licence seats: {seats_in_use(seats)} ({inactive})")


async def _check_slack(settings: Settings, report: Report) -> None:
    client = build_slack_client(settings)
    try:
        auth = await client.auth_test()
    except SlackApiError as exc:
        report.fail(f"SLACK_BOT_TOKEN was refused: {exc.response.get('error')}")
        return
    except Exception as exc:
        report.fail(f"Slack could not be reached: {type(exc).__name__}")
        return
    report.ok(f"bot token for {auth.get('user')} in workspace {auth.get('team')}")
    channel = settings.slack_approver_channel
    if await _check_approver_channel(settings, client, report):
        try:
            await client.conversations_members(channel=channel, limit=1)
        except SlackApiError as exc:
            error = exc.response.get("error")
            report.fail(
                f"cannot read the approver channel {channel}: {error}. {_hint(error)}".strip()
            )
        else:
            report.ok(f"the bot can read the members of the approver channel {channel}")
        await _check_card_history(client, channel, report)
    await _check_usergroups(settings, client, report)
    await _check_escalation_channel(settings, client, report)
    if settings.slack_signing_secret is None and settings.slack_app_token is None:
        report.fail("set SLACK_SIGNING_SECRET (HTTP mode) or SLACK_APP_TOKEN (Socket Mode)")


async def _check_card_history(client: AsyncWebClient, channel: str, report: Report) -> None:
    """Whether a card whose post answer was lost can be found before posting it again."""
    try:
        await client.conversations_history(channel=channel, limit=1)
    except SlackApiError as exc:
        report.warn(
            f"cannot read the approver channel's history ({exc.response.get('error')}): a card "
            "whose post answer is lost may be posted twice. Reinstall the app from manifest.yml "
            "(groups:history, channels:history)."
        )
    except Exception as exc:
        report.warn(f"cannot read the approver channel's history: {type(exc).__name__}")
    else:
        report.ok("the bot can look for a card it posted (approver channel history)")


def _hint(error: object) -> str:
    return {
        "channel_not_found": "check the ID, and invite the bot if the channel is private",
        "not_in_channel": "invite the bot to the channel (/invite @bot)",
        "missing_scope": "reinstall the app from manifest.yml (channels:read, groups:read)",
    }.get(str(error), "")


async def _check_approver_channel(
    settings: Settings, client: AsyncWebClient, report: Report
) -> bool:
    """Is the approver channel a safe set of approvers: private, and who else is in it?
    False when it cannot be read at all."""
    channel_id = settings.slack_approver_channel
    try:
        answer = await client.conversations_info(channel=channel_id)
    except SlackApiError as exc:
        error = exc.response.get("error")
        report.fail(
            f"cannot read the approver channel {channel_id}: {error}. {_hint(error)}".strip()
        )
        return False
    except Exception as exc:
        report.fail(f"cannot read the approver channel {channel_id}: {type(exc).__name__}")
        return False
    channel = channel_info(channel_id, answer.get("channel") or {})
    if settings.slack_approver_usergroup:
        if not channel.is_private:
            report.ok(
                f"the approver channel {channel.label} is public, which is fine: only members "
                "of SLACK_APPROVER_USERGROUP decide"
            )
    elif channel.is_private:
        report.ok(f"the approver channel {channel.label} is private")
    elif settings.approver_channel_allow_public:
        report.warn(
            f"the approver channel {channel.label} is public: anyone in the workspace can join "
            "it and approve (APPROVER_CHANNEL_ALLOW_PUBLIC=true says that is meant)"
        )
    else:
        report.fail(public_channel_message(channel))
    if channel.shared_externally:
        report.warn(shared_channel_message(channel))
    return True


async def _check_usergroups(settings: Settings, client: AsyncWebClient, report: Report) -> None:
    """Each approver user group: readable, how many members it has, and enough of them for
    the approvals APPROVALS_REQUIRED asks of the roles people may ask for."""
    members: dict[str, frozenset[str]] = {}
    for variable, usergroup in (
        ("SLACK_APPROVER_USERGROUP", settings.slack_approver_usergroup),
        ("SLACK_ADMIN_APPROVER_USERGROUP", settings.slack_admin_approver_usergroup),
    ):
        if not usergroup:
            continue
        try:
            answer = await client.usergroups_users_list(usergroup=usergroup)
        except SlackApiError as exc:
            error = exc.response.get("error")
            if error == "plan_upgrade_required":
                report.fail(
                    f"{variable} {usergroup}: Slack user groups need a paid Slack plan "
                    "(plan_upgrade_required); unset it to decide by the approver channel"
                )
            elif error == "missing_scope":
                report.fail(
                    f"{variable} {usergroup}: the bot lacks the usergroups:read scope "
                    "(reinstall the app from manifest.yml)"
                )
            else:
                report.fail(f"cannot read {variable} {usergroup}: {error}")
            continue
        except Exception as exc:
            report.fail(f"cannot read {variable} {usergroup}: {type(exc).__name__}")
            continue
        members[variable] = frozenset(str(user) for user in answer.get("users") or [])

    required = ApprovalsRequired(settings.approvals_required)
    roles = settings.requestable_roles
    approvers = members.get("SLACK_APPROVER_USERGROUP")
    if approvers is not None:
        # The most approvals a request can need (None: Connect's default role).
        needed = max(required.needed(role) for role in (*roles, None))
        _report_group(report, "SLACK_APPROVER_USERGROUP", settings, len(approvers), needed)
    admins = members.get("SLACK_ADMIN_APPROVER_USERGROUP")
    if admins is not None:
        # Who decides Administrator must be in both groups, when both are set.
        deciders = admins & approvers if approvers is not None else admins
        needed = required.needed("administrator") if "administrator" in roles else 1
        _report_group(report, "SLACK_ADMIN_APPROVER_USERGROUP", settings, len(deciders), needed)


def _report_group(
    report: Report, variable: str, settings: Settings, size: int, needed: int
) -> None:
    usergroup = getattr(settings, variable.lower())
    if not size:
        report.fail(f"{variable} {usergroup} has no members who may decide: nobody could")
    elif size < needed:
        report.fail(
            f"{variable} {usergroup} has {size} member(s) who may decide, but "
            f"APPROVALS_REQUIRED asks for {needed} different approvers: such requests could "
            "never be approved"
        )
    else:
        report.ok(f"{variable} {usergroup} has {size} member(s), who may decide")


async def _check_escalation_channel(
    settings: Settings, client: AsyncWebClient, report: Report
) -> None:
    """Can the bot post where requests nobody decided are announced? An escalation that cannot
    be posted is given up (it is announced once)."""
    channel = settings.slack_escalation_channel
    if not channel:
        return
    try:
        answer = await client.conversations_info(channel=channel)
    except SlackApiError as exc:
        error = exc.response.get("error")
        report.fail(
            f"cannot read the escalation channel {channel}: {error}. {_hint(error)}".strip()
        )
        return
    except Exception as exc:
        report.fail(f"cannot read the escalation channel {channel}: {type(exc).__name__}")
        return
    info = answer.get("channel") or {}
    if info.get("is_archived"):
        report.fail(f"the escalation channel {channel} is archived")
    elif info.get("is_member") is False:
        report.fail(f"the bot is not in the escalation channel {channel}: invite it there")
    else:
        report.ok(f"requests nobody decides are escalated in {channel}")


async def _check_database(settings: Settings, report: Report) -> None:
    engine = create_engine(settings.database_url)
    try:
        if await is_up_to_date(engine):
            report.ok("reachable, schema up to date")
        else:
            report.warn("reachable; the schema will be migrated when the bot starts")
    except Exception as exc:
        report.fail(f"cannot use the database: {type(exc).__name__}")
    finally:
        await engine.dispose()
