"""The workspace the fake Slack keeps: its team and bot identity, users (users.info,
users.lookupByEmail), channels and their members, the messages the bot posted and their edits,
modals and Home tabs, used trigger ids.

Tests configure it (add_user, add_channel, set_channel_members, …) and read it back (message,
channel_messages, view, home_view). Part of FakeSlack (server.py), whose lock guards it.
"""

from __future__ import annotations

import secrets
import threading
import time
from typing import Any

_BASE_TS_MICROS = 1_700_000_000_000_100  # first ts handed out: "1700000000.000100"


class WorkspaceState:
    """Users, channels, messages and views, and the settings that shape how Slack treats them
    (``enterprise_id``, ``members_page_size``, ``strict_messages``,
    ``enforce_single_use_triggers``: see FakeSlack). Part of FakeSlack (server.py)."""

    _lock: threading.RLock

    def _init_state(
        self,
        *,
        team_id: str,
        team_name: str,
        team_domain: str,
        bot_user_id: str,
        bot_id: str,
        app_id: str,
        members_page_size: int | None,
    ) -> None:
        self.team_id = team_id
        self.enterprise_id: str | None = None
        self.team_name = team_name
        self.team_domain = team_domain
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.app_id = app_id
        self.members_page_size = members_page_size
        self.strict_messages = False
        self.enforce_single_use_triggers = True
        self._users: dict[str, dict[str, Any]] = {}
        self._channels: dict[str, dict[str, Any]] = {}
        # User groups (S…): their members; `usergroups_plan` False answers plan_upgrade_required.
        self._usergroups: dict[str, list[str]] = {}
        self.usergroups_plan = True
        # Workflow Builder step executions: started by `function_executed_event`, ended by
        # functions.completeSuccess / completeError ("completed" / "failed"); an id in
        # `ended_executions` answers execution_not_in_running_state (the run is gone).
        self.executions: dict[str, str] = {}
        self.ended_executions: set[str] = set()
        self._messages: dict[tuple[str, str], dict[str, Any]] = {}
        self._ephemeral_ts: set[str] = set()
        self._views: dict[str, dict[str, Any]] = {}
        self._home_views: dict[str, str] = {}  # user id -> view id of their published Home tab
        self._used_triggers: set[str] = set()
        self._ts_counter = 0
        # Where message timestamps start. Slack's are the posting time; the fixed default keeps
        # tests' literal ts values valid. Set it to `wall_clock_ts()` where time matters (a
        # conversations.history search from a moment on).
        self.ts_base_micros = _BASE_TS_MICROS
        self._view_counter = 0

    def _reset_state(self) -> None:
        """Forget users, channels, messages, views and used triggers (under the lock)."""
        self._users.clear()
        self._channels.clear()
        self._usergroups.clear()
        self.executions.clear()
        self.ended_executions.clear()
        self._messages.clear()
        self._ephemeral_ts.clear()
        self._views.clear()
        self._home_views.clear()
        self._used_triggers.clear()

    # -----------------------------------------------------------------------------------------
    # configuration
    # -----------------------------------------------------------------------------------------
    def add_user(
        self,
        user_id: str,
        *,
        team_id: str = "T0001",
        is_restricted: bool = False,
        is_ultra_restricted: bool = False,
        deleted: bool = False,
        is_bot: bool = False,
        email: str | None = None,
        real_name: str | None = None,
        name: str | None = None,
        enterprise_id: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """Add (or replace) a user for ``users.info`` / ``users.lookupByEmail``.

        A user whose ``team_id`` differs from the fake's team (and who is not in the same
        ``enterprise_id``) is a Slack Connect stranger: ``is_stranger: true``. ``extra`` keys are
        merged into the top level of the user object. Returns the user object.
        """
        name = name or user_id.lower()
        real_name = real_name if real_name is not None else name.replace(".", " ").title()
        profile: dict[str, Any] = {
            "title": "",
            "phone": "",
            "skype": "",
            "real_name": real_name,
            "real_name_normalized": real_name,
            "display_name": name,
            "display_name_normalized": name,
            "fields": None,
            "status_text": "",
            "status_emoji": "",
            "status_expiration": 0,
            "avatar_hash": "g0000000000",
            "first_name": real_name.split(" ")[0] if real_name else "",
            "last_name": " ".join(real_name.split(" ")[1:]) if real_name else "",
            "image_24": "https://secure.gravatar.com/avatar/0.jpg?s=24",
            "image_72": "https://secure.gravatar.com/avatar/0.jpg?s=72",
            "team": team_id,
        }
        if email is not None:
            profile["email"] = email
        if is_bot:
            profile["bot_id"] = self.bot_id if user_id == self.bot_user_id else f"B{user_id}"
        user: dict[str, Any] = {
            "id": user_id,
            "team_id": team_id,
            "name": name,
            "deleted": deleted,
            "color": "9f69e7",
            "real_name": real_name,
            "tz": "Europe/London",
            "tz_label": "Greenwich Mean Time",
            "tz_offset": 0,
            "profile": profile,
            "is_admin": False,
            "is_owner": False,
            "is_primary_owner": False,
            "is_restricted": is_restricted,
            "is_ultra_restricted": is_ultra_restricted,
            "is_bot": is_bot,
            "is_app_user": False,
            "updated": 1_700_000_000,
            "is_email_confirmed": email is not None,
            "who_can_share_contact_card": "EVERYONE",
        }
        if enterprise_id is not None:
            user["enterprise_user"] = {
                "id": user_id,
                "enterprise_id": enterprise_id,
                "enterprise_name": "Test Enterprise",
                "is_admin": False,
                "is_owner": False,
                "is_primary_owner": False,
                "teams": [team_id],
            }
        if team_id != self.team_id and (
            enterprise_id is None or enterprise_id != self._own_enterprise_id()
        ):
            user["is_stranger"] = True
        user.update(extra)
        with self._lock:
            self._users[user_id] = user
        return user

    def _own_enterprise_id(self) -> str | None:
        bot = self._users.get(self.bot_user_id)
        if bot and "enterprise_user" in bot:
            return bot["enterprise_user"]["enterprise_id"]
        return self.enterprise_id

    def remove_user(self, user_id: str) -> None:
        with self._lock:
            self._users.pop(user_id, None)

    def function_executed_event(
        self, callback_id: str, inputs: dict[str, Any], *, execution_id: str | None = None
    ) -> dict[str, Any]:
        """A `function_executed` event, as Slack sends it when a workflow reaches the app's
        custom step; the execution is running until the app completes it. The event carries
        a short-lived workflow token, which the bot must never use or keep."""
        with self._lock:
            self._view_counter += 1
            execution = execution_id or f"Fx{self._view_counter:08d}"
            self.executions[execution] = "running"
        return {
            "type": "function_executed",
            "function": {
                "id": "Fn0REQUEST",
                "callback_id": callback_id,
                "title": "Request a Posit Connect account",
                "type": "app",
                "app_id": self.app_id,
            },
            "inputs": dict(inputs),
            "function_execution_id": execution,
            "workflow_execution_id": f"Wx{execution}",
            "bot_access_token": "xwfp-WORKFLOW-TOKEN-never-to-be-used",
        }

    def add_usergroup(self, usergroup: str, members: list[str]) -> None:
        """Add (or replace) a user group for ``usergroups.users.list``."""
        with self._lock:
            self._usergroups[usergroup] = list(members)

    def add_channel(
        self,
        channel: str,
        *,
        name: str | None = None,
        is_private: bool = False,
        members: list[str] | None = None,
        is_member: bool = True,
        is_ext_shared: bool = False,
        is_pending_ext_shared: bool = False,
    ) -> None:
        """Declare a channel (``conversations.info``); ``members`` for ``conversations.members``.

        ``is_ext_shared``: shared with another organisation through Slack Connect
        (``is_shared`` too, as Slack reports it); ``is_pending_ext_shared``: invited, not yet
        accepted."""
        with self._lock:
            existing = self._channels.get(channel, {})
            self._channels[channel] = {
                "name": name or existing.get("name") or channel.lower(),
                "is_private": is_private,
                "members": list(members if members is not None else existing.get("members", [])),
                "is_member": is_member,
                "is_ext_shared": is_ext_shared,
                "is_pending_ext_shared": is_pending_ext_shared,
            }

    def set_channel_members(self, channel: str, members: list[str]) -> None:
        with self._lock:
            info = self._channels.setdefault(
                channel, {"name": channel.lower(), "is_private": False, "is_member": True}
            )
            info["members"] = list(members)
            info["is_member"] = True

    def set_channel_not_member(self, channel: str) -> None:
        """The bot is not in ``channel``: ``conversations.members``/``chat.postMessage`` answer
        ``not_in_channel``."""
        with self._lock:
            info = self._channels.setdefault(
                channel, {"name": channel.lower(), "is_private": False, "members": []}
            )
            info["is_member"] = False

    # -----------------------------------------------------------------------------------------
    # reading it back
    # -----------------------------------------------------------------------------------------
    def message(self, channel: str, ts: str) -> dict[str, Any] | None:
        """The current state of a message the bot posted (after updates / response_url edits)."""
        with self._lock:
            msg = self._messages.get((channel, ts))
            return None if msg is None else dict(msg)

    def channel_messages(self, channel: str) -> list[dict[str, Any]]:
        """Messages posted to ``channel`` and not deleted, in order."""
        with self._lock:
            return [
                dict(m)
                for (ch, _), m in self._messages.items()
                if ch == channel and not m.get("deleted")
            ]

    def view(self, view_id: str) -> dict[str, Any] | None:
        with self._lock:
            v = self._views.get(view_id)
            return None if v is None else dict(v)

    def home_view(self, user_id: str) -> dict[str, Any] | None:
        """The Home tab last published for ``user_id`` with ``views.publish``, if any."""
        with self._lock:
            view_id = self._home_views.get(user_id)
            v = None if view_id is None else self._views.get(view_id)
            return None if v is None else dict(v)

    # -----------------------------------------------------------------------------------------
    # bookkeeping for the methods (called under the lock)
    # -----------------------------------------------------------------------------------------
    def _next_ts(self) -> str:
        self._ts_counter += 1
        micros = self.ts_base_micros + (self._ts_counter - 1) * 100
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _known_message_problem(self, channel: str, ts: str) -> dict[str, Any] | None:
        if ts in self._ephemeral_ts:
            return {"ok": False, "error": "message_not_found"}
        if (channel, ts) in self._messages:
            if self._messages[(channel, ts)].get("deleted"):
                return {"ok": False, "error": "message_not_found"}
            return None
        posted_elsewhere = any(t == ts for (_, t) in self._messages)
        if posted_elsewhere:
            return {"ok": False, "error": "message_not_found"}
        if self.strict_messages:
            return {"ok": False, "error": "message_not_found"}
        return None

    def _store_view(self, view: dict[str, Any], view_id: str | None = None) -> dict[str, Any]:
        if view_id is None:
            self._view_counter += 1
            view_id = f"V{self._view_counter:010d}"
        stored = {
            "id": view_id,
            "team_id": self.team_id,
            "type": view.get("type", "modal"),
            "blocks": view.get("blocks", []),
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "state": {"values": {}},
            "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
            "title": view.get("title"),
            "clear_on_close": bool(view.get("clear_on_close", False)),
            "notify_on_close": bool(view.get("notify_on_close", False)),
            "close": view.get("close"),
            "submit": view.get("submit"),
            "previous_view_id": None,
            "root_view_id": view_id,
            "app_id": self.app_id,
            "external_id": view.get("external_id", ""),
            "app_installed_team_id": self.team_id,
            "bot_id": self.bot_id,
        }
        self._views[view_id] = stored
        return stored


def wall_clock_ts() -> int:
    """Now, in microseconds: a `ts_base_micros` that makes ts values what Slack's are."""
    return int(time.time() * 1_000_000)
