"""The Web API methods the bot calls, answered as Slack answers them, from the workspace state
(state.py), with payloads checked by Slack's Block Kit rules (tests/support/blockkit.py).

auth.test, chat.postMessage/update/delete/postEphemeral/getPermalink, views.open/push/update/
publish, conversations.open/members/info, users.info/lookupByEmail; apps.connections.open is in
socket_mode.py. A method the fake does not know answers ``{"ok": true}``.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from typing import Any

from tests.support import blockkit


class WebApiMethods:
    """Part of FakeSlack (server.py): ``_dispatch`` runs a method under its lock."""

    def _dispatch(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        impl = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.delete": self._chat_delete,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.getPermalink": self._chat_get_permalink,
            "views.open": self._views_open,
            "views.push": self._views_open,
            "views.update": self._views_update,
            "views.publish": self._views_publish,
            "conversations.open": self._conversations_open,
            "conversations.members": self._conversations_members,
            "conversations.info": self._conversations_info,
            "conversations.history": self._conversations_history,
            "users.info": self._users_info,
            "users.lookupByEmail": self._users_lookup_by_email,
            "usergroups.users.list": self._usergroups_users_list,
            "apps.connections.open": self._apps_connections_open,
            "functions.completeSuccess": self._functions_complete,
            "functions.completeError": self._functions_complete,
        }.get(method)
        if impl is None:
            return {"ok": True}
        with self._lock:
            return impl(method, args)

    # -----------------------------------------------------------------------------------------
    # helpers
    # -----------------------------------------------------------------------------------------
    def _resolve_channel(self, channel: str) -> str:
        # Posting to a user id posts to the DM with that user, and Slack answers the D… id.
        if channel[:1] in ("U", "W"):
            return "D" + channel
        return channel

    def _message_object(self, args: dict[str, Any], ts: str) -> dict[str, Any]:
        msg: dict[str, Any] = {
            "type": "message",
            "subtype": "bot_message",
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "app_id": self.app_id,
            "team": self.team_id,
            "text": args.get("text", ""),
            "ts": ts,
        }
        if args.get("blocks") is not None:
            msg["blocks"] = args["blocks"]
        if args.get("attachments") is not None:
            msg["attachments"] = args["attachments"]
        if args.get("thread_ts"):
            msg["thread_ts"] = args["thread_ts"]
        if args.get("metadata") is not None:
            msg["metadata"] = args["metadata"]
        return msg

    # -----------------------------------------------------------------------------------------
    # methods
    # -----------------------------------------------------------------------------------------
    def _auth_test(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": f"https://{self.team_domain}.slack.com/",
            "team": self.team_name,
            "user": self._users.get(self.bot_user_id, {}).get("name", "bot"),
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
            **({"enterprise_id": self.enterprise_id} if self.enterprise_id else {}),
        }

    def _chat_post_message(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        channel = args.get("channel")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        channel = self._resolve_channel(str(channel))
        info = self._channels.get(channel)
        if info is not None and info.get("is_member") is False:
            return {"ok": False, "error": "not_in_channel"}
        problem = blockkit.message_problem(args)
        if problem is not None:
            return problem
        ts = self._next_ts()
        msg = self._message_object(args, ts)
        self._messages[(channel, ts)] = dict(msg, channel=channel)
        return {"ok": True, "channel": channel, "ts": ts, "message": msg}

    def _chat_post_ephemeral(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        channel, user = args.get("channel"), args.get("user")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if not user:
            return {"ok": False, "error": "user_not_found"}
        info = self._channels.get(str(channel))
        if info is not None and info.get("is_member") is False:
            return {"ok": False, "error": "not_in_channel"}
        if info is not None and info.get("members") and user not in info["members"]:
            return {"ok": False, "error": "user_not_in_channel"}
        problem = blockkit.message_problem(args)
        if problem is not None:
            return problem
        ts = self._next_ts()
        self._ephemeral_ts.add(ts)
        return {"ok": True, "message_ts": ts}

    def _chat_update(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        channel, ts = args.get("channel"), args.get("ts")
        if not channel:
            return {"ok": False, "error": "invalid_arguments"}
        if not ts:
            return {"ok": False, "error": "message_not_found"}
        channel, ts = str(channel), str(ts)
        problem = self._known_message_problem(channel, ts) or blockkit.message_problem(args)
        if problem is not None:
            return problem
        msg = self._messages.get((channel, ts))
        if msg is None:
            msg = self._message_object(args, ts)
            msg["channel"] = channel
            self._messages[(channel, ts)] = msg
        if "text" in args:
            msg["text"] = args["text"]
        if "blocks" in args:
            msg["blocks"] = args["blocks"]
        if "attachments" in args:
            msg["attachments"] = args["attachments"]
        msg["edited"] = True
        out = {k: v for k, v in msg.items() if k not in ("channel", "edited", "deleted")}
        return {
            "ok": True,
            "channel": channel,
            "ts": ts,
            "text": msg.get("text", ""),
            "message": out,
        }

    def _chat_delete(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        channel, ts = args.get("channel"), args.get("ts")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if not ts:
            return {"ok": False, "error": "message_not_found"}
        problem = self._known_message_problem(str(channel), str(ts))
        if problem is not None:
            return problem
        msg = self._messages.get((str(channel), str(ts)))
        if msg is not None:
            msg["deleted"] = True
        return {"ok": True, "channel": channel, "ts": ts}

    def _chat_get_permalink(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        channel, ts = args.get("channel"), args.get("message_ts")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if not ts:
            return {"ok": False, "error": "message_not_found"}
        problem = self._known_message_problem(str(channel), str(ts))
        if problem is not None:
            return problem
        return {
            "ok": True,
            "channel": channel,
            "permalink": f"https://{self.team_domain}.slack.com/archives/{channel}/"
            f"p{str(ts).replace('.', '')}",
        }

    def _views_open(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        trigger = args.get("trigger_id") or args.get("interactivity_pointer")
        if not trigger:
            return {"ok": False, "error": "invalid_arguments"}
        view = args.get("view")
        problems = blockkit.view_problems(view)
        if problems:
            return _invalid_arguments(problems)
        if self.enforce_single_use_triggers:
            if trigger in self._used_triggers:
                return {"ok": False, "error": "exchanged_trigger_id"}
            self._used_triggers.add(str(trigger))
        return {"ok": True, "view": self._store_view(view)}

    def _views_update(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        view_id, external_id = args.get("view_id"), args.get("external_id")
        if not view_id and not external_id:
            return {"ok": False, "error": "invalid_arguments"}
        view = args.get("view")
        problems = blockkit.view_problems(view)
        if problems:
            return _invalid_arguments(problems)
        if not view_id:
            view_id = next(
                (v["id"] for v in self._views.values() if v.get("external_id") == external_id),
                None,
            )
            if view_id is None:
                return {"ok": False, "error": "not_found"}
        current = self._views.get(str(view_id))
        if current is not None and args.get("hash") and args["hash"] != current["hash"]:
            return {"ok": False, "error": "hash_conflict"}
        return {"ok": True, "view": self._store_view(view, str(view_id))}

    def _views_publish(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        user_id = args.get("user_id")
        if not user_id:
            return {"ok": False, "error": "invalid_arguments"}
        if str(user_id) not in self._users:
            return {"ok": False, "error": "user_not_found"}
        view = args.get("view")
        problems = blockkit.view_problems(view)
        if not problems and view.get("type") != "home":
            problems = [blockkit.problem("must be home for views.publish", "/view/type")]
        if problems:
            return _invalid_arguments(problems)
        stored = self._store_view(view, self._home_views.get(str(user_id)))
        self._home_views[str(user_id)] = stored["id"]
        return {"ok": True, "view": stored}

    def _conversations_open(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        if args.get("channel"):
            return {"ok": True, "channel": {"id": args["channel"]}}
        users = args.get("users")
        if isinstance(users, list):
            ids = [str(u) for u in users]
        else:
            ids = [u.strip() for u in str(users or "").split(",") if u.strip()]
        if not ids:
            return {"ok": False, "error": "users_list_not_supplied"}
        if len(ids) == 1:
            return {
                "ok": True,
                "no_op": True,
                "already_open": True,
                "channel": {"id": "D" + ids[0]},
            }
        return {"ok": True, "channel": {"id": "G" + secrets.token_hex(5).upper()}}

    def _conversations_members(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        channel = str(args.get("channel") or "")
        info = self._channels.get(channel)
        if info is None:
            return {"ok": False, "error": "channel_not_found"}
        if info.get("is_member") is False:
            return {"ok": False, "error": "not_in_channel"}
        try:
            limit = int(args.get("limit") or 100)
        except ValueError:
            return {"ok": False, "error": "invalid_limit"}
        limit = max(1, min(limit, 1000))
        if self.members_page_size is not None:
            limit = min(limit, self.members_page_size)
        offset = 0
        cursor = args.get("cursor")
        if cursor:
            try:
                decoded = base64.b64decode(str(cursor), validate=True).decode()
                prefix, _, number = decoded.partition(":")
                if prefix != "offset":
                    raise ValueError(decoded)
                offset = int(number)
            except (ValueError, binascii.Error, UnicodeDecodeError):
                return {"ok": False, "error": "invalid_cursor"}
        members = info.get("members", [])
        page = members[offset : offset + limit]
        end = offset + limit
        next_cursor = (
            base64.b64encode(f"offset:{end}".encode()).decode() if end < len(members) else ""
        )
        return {"ok": True, "members": page, "response_metadata": {"next_cursor": next_cursor}}

    def _conversations_history(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        """Top-level messages of a channel, newest first, after `oldest`; a message's
        `metadata` only with `include_all_metadata` (as Slack does)."""
        channel = str(args.get("channel") or "")
        info = self._channels.get(channel)
        if info is None:
            return {"ok": False, "error": "channel_not_found"}
        if info.get("is_member") is False:
            return {"ok": False, "error": "not_in_channel"}
        try:
            limit = max(1, min(int(args.get("limit") or 100), 999))
            oldest = float(args.get("oldest") or 0)
            offset = (
                int(base64.b64decode(str(args["cursor"])).decode()) if args.get("cursor") else 0
            )
        except (ValueError, binascii.Error, UnicodeDecodeError):
            return {"ok": False, "error": "invalid_arguments"}
        with_metadata = str(args.get("include_all_metadata", "")).lower() in ("1", "true")
        found = sorted(
            (
                m
                for (ch, ts), m in self._messages.items()
                if ch == channel
                and not m.get("deleted")
                and float(ts) > oldest
                and m.get("thread_ts") in (None, ts)
            ),
            key=lambda m: float(m["ts"]),
            reverse=True,
        )
        page = [
            {k: v for k, v in m.items() if with_metadata or k != "metadata"}
            for m in found[offset : offset + limit]
        ]
        more = offset + limit < len(found)
        next_cursor = base64.b64encode(str(offset + limit).encode()).decode() if more else ""
        return {
            "ok": True,
            "messages": json.loads(json.dumps(page)),
            "has_more": more,
            "response_metadata": {"next_cursor": next_cursor},
        }

    def _conversations_info(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        channel = str(args.get("channel") or "")
        if channel.startswith("D"):
            return {
                "ok": True,
                "channel": {"id": channel, "is_im": True, "user": channel[1:], "is_open": True},
            }
        info = self._channels.get(channel)
        if info is None:
            return {"ok": False, "error": "channel_not_found"}
        out = {
            "id": channel,
            "name": info["name"],
            "is_channel": not info["is_private"],
            "is_group": False,
            "is_im": False,
            "is_mpim": False,
            "is_private": info["is_private"],
            "is_archived": False,
            "is_general": False,
            "is_shared": bool(info.get("is_ext_shared")),
            "is_ext_shared": bool(info.get("is_ext_shared")),
            "is_pending_ext_shared": bool(info.get("is_pending_ext_shared")),
            "is_org_shared": False,
            "is_member": info.get("is_member", True),
            "context_team_id": self.team_id,
            "created": 1_600_000_000,
            "creator": self.bot_user_id,
        }
        if str(args.get("include_num_members", "")).lower() in ("1", "true"):
            out["num_members"] = len(info.get("members", []))
        return {"ok": True, "channel": out}

    def _users_info(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        user = self._users.get(str(args.get("user") or ""))
        if user is None:
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "user": json.loads(json.dumps(user))}

    def _users_lookup_by_email(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        email = str(args.get("email") or "").strip().lower()
        if not email:
            return {"ok": False, "error": "invalid_email"}
        for user in self._users.values():
            found = str(user["profile"].get("email", "")).lower()
            if found and found == email and not user.get("deleted"):
                return {"ok": True, "user": json.loads(json.dumps(user))}
        return {"ok": False, "error": "users_not_found"}

    def _usergroups_users_list(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        # Free workspaces have no user groups; Slack answers every call so.
        if not self.usergroups_plan:
            return {"ok": False, "error": "plan_upgrade_required"}
        members = self._usergroups.get(str(args.get("usergroup") or ""))
        if members is None:
            return {"ok": False, "error": "no_such_subteam"}
        return {"ok": True, "users": list(members)}

    def _functions_complete(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        execution = str(args.get("function_execution_id") or "")
        if not execution:
            return {"ok": False, "error": "invalid_arguments"}
        if method.endswith("completeError") and not str(args.get("error") or ""):
            return {"ok": False, "error": "invalid_arguments"}
        if method.endswith("completeSuccess") and not isinstance(args.get("outputs"), dict | str):
            return {"ok": False, "error": "invalid_arguments"}
        # Only a running execution can be ended, and only once.
        if execution in self.ended_executions or self.executions.get(execution) != "running":
            return {"ok": False, "error": "execution_not_in_running_state"}
        self.executions[execution] = "completed" if method.endswith("completeSuccess") else "failed"
        return {"ok": True}


def _invalid_arguments(problems: list[str]) -> dict[str, Any]:
    return {
        "ok": False,
        "error": "invalid_arguments",
        "response_metadata": {"messages": problems},
    }
