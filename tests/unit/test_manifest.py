"""The Slack app manifest asks for exactly the scopes the code uses, and wires the endpoints."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]

# Which bot scopes each Web API method the bot calls needs (Slack's method reference).
SCOPES_BY_METHOD = {
    "auth_test": set(),
    "chat_postMessage": {"chat:write"},
    "chat_update": {"chat:write"},
    "chat_postEphemeral": {"chat:write"},
    "chat_getPermalink": set(),
    "views_open": set(),
    "views_update": set(),
    "views_publish": set(),
    "conversations_members": {"channels:read", "groups:read"},
    "conversations_info": {"channels:read", "groups:read"},
    "conversations_history": {"channels:history", "groups:history"},
    "conversations_open": {"im:write"},
    "users_info": {"users:read"},
    "users_lookupByEmail": {"users:read.email"},
    "usergroups_users_list": {"usergroups:read"},
    # A remote function's app completes its own executions; no scope is asked for.
    "functions_completeSuccess": set(),
    "functions_completeError": set(),
}


def methods_called_by_the_bot() -> set[str]:
    pattern = re.compile(
        r"\.(auth_test|chat_\w+|conversations_\w+|users_\w+|usergroups_\w+|views_\w+|functions_\w+)\("
    )
    found: set[str] = set()
    for path in (ROOT / "bot").rglob("*.py"):
        found.update(pattern.findall(path.read_text()))
    return found


def test_every_method_the_code_calls_has_a_known_scope() -> None:
    unknown = methods_called_by_the_bot() - SCOPES_BY_METHOD.keys()
    assert not unknown, f"add these methods' scopes to SCOPES_BY_METHOD: {unknown}"


def test_manifest_asks_for_exactly_the_scopes_used() -> None:
    manifest = yaml.safe_load((ROOT / "manifest.yml").read_text())
    requested = set(manifest["oauth_config"]["scopes"]["bot"])
    needed = {"commands"}.union(*(SCOPES_BY_METHOD[m] for m in methods_called_by_the_bot()))
    assert requested == needed


# Which bot scopes each event the bot listens to needs (Slack's event reference).
SCOPES_BY_EVENT = {
    "app_home_opened": set(),
    "member_joined_channel": {"channels:read", "groups:read"},
    "member_left_channel": {"channels:read", "groups:read"},
    "user_change": {"users:read"},
    "channel_shared": {"channels:read", "groups:read"},
    "channel_unshared": {"channels:read", "groups:read"},
    "subteam_members_changed": {"usergroups:read"},
    "function_executed": set(),
}


def events_handled_by_the_bot() -> set[str]:
    pattern = re.compile(r"""\.event\(\s*["']([a-z_]+)["']""")
    found: set[str] = set()
    for path in (ROOT / "bot").rglob("*.py"):
        text = path.read_text()
        found.update(pattern.findall(text))
        if re.search(r"\.function\(", text):  # a Workflow Builder step: Bolt's function listener
            found.add("function_executed")
    return found


def test_manifest_declares_the_workflow_step() -> None:
    from bot.slack.listeners.functions import CALLBACK_ID

    manifest = yaml.safe_load((ROOT / "manifest.yml").read_text())
    step = manifest["functions"][CALLBACK_ID]
    inputs = step["input_parameters"]
    assert set(inputs["properties"]) == {"user_id", "requester_id", "justification", "role"}
    assert inputs["properties"]["user_id"]["type"] == "slack#/types/user_id"
    assert set(inputs["required"]) == {"user_id", "requester_id", "justification"}
    outputs = step["output_parameters"]["properties"]
    assert set(outputs) == {"request_id", "outcome", "connect_guid"}
    assert manifest["settings"]["function_runtime"] == "remote"
    assert manifest["settings"]["org_deploy_enabled"] is True


def test_manifest_subscribes_to_exactly_the_events_handled() -> None:
    manifest = yaml.safe_load((ROOT / "manifest.yml").read_text())
    subscribed = set(manifest["settings"]["event_subscriptions"]["bot_events"])
    handled = events_handled_by_the_bot()
    assert {"member_left_channel", "user_change", "channel_shared"} <= handled
    assert subscribed == handled
    requested = set(manifest["oauth_config"]["scopes"]["bot"])
    for event in handled:
        assert SCOPES_BY_EVENT[event] <= requested, event


def test_manifest_wires_the_command_and_interactivity() -> None:
    manifest = yaml.safe_load((ROOT / "manifest.yml").read_text())
    (command,) = manifest["features"]["slash_commands"]
    assert command["command"] == "/connect-user"
    assert command["url"].endswith("/slack/events")
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    assert manifest["settings"]["interactivity"]["request_url"].endswith("/slack/events")
    # The group select's options (block_suggestion) come to the same route in HTTP mode.
    options_url = manifest["settings"]["interactivity"]["message_menu_options_url"]
    assert options_url == manifest["settings"]["interactivity"]["request_url"]
    assert len(manifest["display_information"]["name"]) <= 35


def test_procfile_runs_serve() -> None:
    assert (ROOT / "Procfile").read_text().strip() == "web: connect-user-bot serve"
