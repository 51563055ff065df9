"""The fake Slack API works with the real AsyncWebClient; the request builders sign correctly."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from urllib.parse import parse_qs

import httpx
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from tests.support.fake_slack import FakeSlack
from tests.support.slack_requests import (
    block_actions_body,
    sign,
    slack_escape,
    slash_command_body,
    view_submission_body,
)

TOKEN = "xoxb-test-token"
SECRET = "test-signing-secret"


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as server:
        yield server


@pytest.fixture
def client(fake: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token=TOKEN, base_url=fake.api_url)


def _section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


async def test_post_message_and_update(fake: FakeSlack, client: AsyncWebClient) -> None:
    auth = await client.auth_test()
    assert auth["team_id"] == "T0001" and auth["user_id"] == fake.bot_user_id

    first = await client.chat_postMessage(channel="C1", text="hello", blocks=[_section("hi")])
    second = await client.chat_postMessage(channel="C1", text="again")
    assert first["ts"] == "1700000000.000100"
    assert float(second["ts"]) > float(first["ts"])
    call = fake.calls_to("chat.postMessage")[0]
    assert call.token == TOKEN and call.http_method == "POST"
    assert call.args["blocks"] == [_section("hi")]
    assert fake.count("chat.postMessage") == 2

    await client.chat_update(channel="C1", ts=first["ts"], text="edited")
    assert fake.message("C1", first["ts"])["text"] == "edited"
    link = await client.chat_getPermalink(channel="C1", message_ts=first["ts"])
    assert link["permalink"] == "https://test.slack.com/archives/C1/p1700000000000100"

    # A message posted to a user id lands in the DM, and Slack answers the D… channel.
    dm = await client.chat_postMessage(channel="U1", text="psst")
    assert dm["channel"] == "DU1"

    # Ephemeral messages cannot be edited with chat.update.
    eph = await client.chat_postEphemeral(channel="C1", user="U1", text="only you")
    with pytest.raises(SlackApiError) as err:
        await client.chat_update(channel="C1", ts=eph["message_ts"], text="x")
    assert err.value.response["error"] == "message_not_found"

    # Form-encoded blocks (a JSON string) are decoded too.
    await client.api_call(
        "chat.postMessage", data={"channel": "C2", "blocks": json.dumps([_section("form")])}
    )
    assert fake.last("chat.postMessage").args["blocks"] == [_section("form")]


async def test_wait_for_from_another_thread(fake: FakeSlack, client: AsyncWebClient) -> None:
    def later() -> None:
        time.sleep(0.05)
        httpx.post(
            fake.api_url + "chat.postMessage",
            json={"channel": "C9", "text": "late"},
            headers={"Authorization": f"Bearer {TOKEN}"},
        )

    thread = threading.Thread(target=later)
    thread.start()
    calls = await fake.wait_for("chat.postMessage", predicate=lambda c: c.args["channel"] == "C9")
    thread.join()
    assert calls[0].args["text"] == "late"

    with pytest.raises(AssertionError, match=r"chat\.postMessage"):
        await fake.wait_for("views.open", timeout=0.05)


async def test_members_pagination(fake: FakeSlack, client: AsyncWebClient) -> None:
    members = [f"U{i:04d}" for i in range(250)]
    fake.set_channel_members("C_APPROVERS", members)

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        resp = await client.conversations_members(channel="C_APPROVERS", cursor=cursor)
        seen += resp["members"]
        pages += 1
        cursor = resp["response_metadata"]["next_cursor"]
        if not cursor:
            break
    assert seen == members and pages == 3  # default page of 100
    assert {c.http_method for c in fake.calls_to("conversations.members")} == {"GET"}

    # POST (form body) works too, and members_page_size caps the page.
    fake.members_page_size = 7
    resp = await client.api_call(
        "conversations.members", data={"channel": "C_APPROVERS", "limit": 1000}
    )
    assert len(resp["members"]) == 7 and resp["response_metadata"]["next_cursor"]
    assert fake.last("conversations.members").http_method == "POST"

    # Bolt-style iteration over pages via the SDK's async iterator.
    fake.members_page_size = None
    collected = []
    async for page in await client.conversations_members(channel="C_APPROVERS", limit=60):
        collected += page["members"]
    assert collected == members

    with pytest.raises(SlackApiError) as err:
        await client.conversations_members(channel="C_UNKNOWN")
    assert err.value.response["error"] == "channel_not_found"
    fake.set_channel_not_member("C_SECRET")
    with pytest.raises(SlackApiError) as err:
        await client.conversations_members(channel="C_SECRET")
    assert err.value.response["error"] == "not_in_channel"


async def test_users(fake: FakeSlack, client: AsyncWebClient) -> None:
    fake.add_user("U1", email="alice@example.com", real_name="Alice Example")
    fake.add_user("U2", team_id="T_OTHER", email="eve@other.example")
    user = (await client.users_info(user="U1"))["user"]
    assert user["profile"]["email"] == "alice@example.com" and "is_stranger" not in user
    assert (await client.users_info(user="U2"))["user"]["is_stranger"] is True
    found = await client.users_lookupByEmail(email="Alice@Example.com")
    assert found["user"]["id"] == "U1"
    with pytest.raises(SlackApiError) as err:
        await client.users_info(user="U404")
    assert err.value.response["error"] == "user_not_found"
    with pytest.raises(SlackApiError) as err:
        await client.users_lookupByEmail(email="nobody@example.com")
    assert err.value.response["error"] == "users_not_found"
    opened = await client.conversations_open(users="U1")
    assert opened["channel"]["id"] == "DU1"


async def test_rate_limit_and_faults(fake: FakeSlack, client: AsyncWebClient) -> None:
    fake.fail("chat.postMessage", status=429, retry_after=0)
    with pytest.raises(SlackApiError) as err:
        await client.chat_postMessage(channel="C1", text="x")
    assert err.value.response.status_code == 429
    assert err.value.response.headers["Retry-After"] in ("0", ["0"])
    assert err.value.response["error"] == "ratelimited"

    # Retry-After: 0 still sleeps up to 1 s of jitter in the handler: keep it to one retry.
    fake.fail("chat.postMessage", status=429, retry_after=0)
    client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=1))
    resp = await client.chat_postMessage(channel="C1", text="x")
    assert resp["ok"]
    assert [c.status for c in fake.calls_to("chat.postMessage")] == [429, 429, 200]

    fake.fail("views.open", error="expired_trigger_id")
    with pytest.raises(SlackApiError) as err:
        await client.views_open(trigger_id="t1", view=_modal())
    assert err.value.response.status_code == 200
    assert err.value.response["error"] == "expired_trigger_id"

    fake.fail("users.info", status=500)
    with pytest.raises(SlackApiError):
        await client.users_info(user=fake.bot_user_id)

    fake.set_handler("team.info", lambda args: {"ok": True, "team": {"id": "T9"}})
    assert (await client.team_info())["team"]["id"] == "T9"
    assert (await client.api_call("something.unknown"))["ok"]
    assert fake.count("something.unknown") == 1


def _modal(**overrides: object) -> dict:
    view = {
        "type": "modal",
        "callback_id": "cb",
        "title": {"type": "plain_text", "text": "Request access"},
        "submit": {"type": "plain_text", "text": "Send"},
        "blocks": [
            {
                "type": "input",
                "block_id": "reason",
                "label": {"type": "plain_text", "text": "Why?"},
                "element": {"type": "plain_text_input", "action_id": "value"},
            }
        ],
    }
    view.update(overrides)
    return view


async def test_block_validation(fake: FakeSlack, client: AsyncWebClient) -> None:
    async def error_of(**kwargs: object) -> str:
        with pytest.raises(SlackApiError) as err:
            await client.chat_postMessage(channel="C1", text="t", **kwargs)
        return err.value.response["error"]

    assert await error_of(blocks=[_section(f"{i}") for i in range(51)]) == "invalid_blocks"
    assert await error_of(blocks=[_section("x" * 3001)]) == "invalid_blocks"
    assert await error_of(blocks=[_section("x" * 2900) for _ in range(5)]) == "msg_blocks_too_long"
    button = {"type": "button", "action_id": "a", "text": {"type": "plain_text", "text": "ok"}}
    long_value = [{"type": "actions", "elements": [dict(button, value="v" * 2001)]}]
    assert await error_of(blocks=long_value) == "invalid_blocks"
    long_text = [
        {
            "type": "actions",
            "elements": [dict(button, text={"type": "plain_text", "text": "x" * 76})],
        }
    ]
    assert await error_of(blocks=long_text) == "invalid_blocks"
    with pytest.raises(SlackApiError) as err:
        await client.chat_postMessage(channel="C1", text="x" * 40_001)
    assert err.value.response["error"] == "msg_too_long"
    ok = await client.chat_postMessage(channel="C1", text="t", blocks=[_section("x")] * 1)
    with pytest.raises(SlackApiError) as err:
        await client.api_call("chat.update", json={"channel": "C1", "text": "no ts"})
    assert err.value.response["error"] == "message_not_found"
    with pytest.raises(SlackApiError) as err:
        await client.chat_update(channel="C1", ts=ok["ts"], text="t", blocks=[_section("x")] * 51)
    assert err.value.response["error"] == "invalid_blocks"

    opened = await client.views_open(trigger_id="t1", view=_modal())
    assert opened["view"]["id"].startswith("V")
    for bad in (
        _modal(title={"type": "plain_text", "text": "x" * 25}),
        _modal(private_metadata="m" * 3001),
        _modal(blocks=[_section(str(i)) for i in range(101)]),
    ):
        with pytest.raises(SlackApiError) as err:
            await client.views_open(trigger_id=f"fresh-{id(bad)}", view=bad)
        assert err.value.response["error"] == "invalid_arguments"
    with pytest.raises(SlackApiError) as err:  # trigger ids are single-use
        await client.views_open(trigger_id="t1", view=_modal())
    assert err.value.response["error"] == "exchanged_trigger_id"


async def test_response_url(fake: FakeSlack) -> None:
    url = fake.new_response_url()
    webhook = AsyncWebhookClient(url)
    resp = await webhook.send(text="working on it", replace_original=True)
    assert resp.status_code == 200 and resp.body == "ok"
    assert fake.responses(url) == [{"text": "working on it", "replace_original": True}]

    resp = await webhook.send(blocks=[_section(str(i)) for i in range(51)])
    assert resp.status_code == 400 and resp.body == "invalid_blocks"
    assert len(fake.responses(url)) == 1
    assert len(fake.responses(url, include_rejected=True)) == 2

    fake.set_response_url_status(url, 404)
    resp = await webhook.send(text="too late", delete_original=True)
    assert resp.status_code == 404 and resp.body == "expired_url"

    other = fake.new_response_url()
    for i in range(5):
        assert (await AsyncWebhookClient(other).send(text=str(i))).status_code == 200
    assert (await AsyncWebhookClient(other).send(text="sixth")).status_code == 404
    bodies = await fake.wait_for_response(other, count=5, timeout=0.5)
    assert [b["text"] for b in bodies] == ["0", "1", "2", "3", "4"]
    with pytest.raises(AssertionError, match="timed out"):
        await fake.wait_for_response(other, count=6, timeout=0.05)


async def test_response_url_edits_linked_message(fake: FakeSlack, client: AsyncWebClient) -> None:
    posted = await client.chat_postMessage(channel="C1", text="card")
    url = fake.new_response_url(channel="C1", message_ts=posted["ts"])
    await AsyncWebhookClient(url).send(text="decided", replace_original=True)
    assert fake.message("C1", posted["ts"])["text"] == "decided"


def test_signing_and_bodies() -> None:
    verifier = SignatureVerifier(SECRET)
    body = slash_command_body(
        text=slack_escape("<mailto:a@b.c|a@b.c> & co"), response_url="http://x/response/1"
    )
    headers = sign(body, SECRET)
    assert verifier.is_valid_request(body, headers)
    assert not verifier.is_valid_request(body, sign(body, "wrong"))
    assert not verifier.is_valid_request(body, sign(body, SECRET, timestamp=int(time.time()) - 600))
    fields = {k: v[0] for k, v in parse_qs(body).items()}
    assert fields["text"] == "&lt;mailto:a@b.c|a@b.c&gt; &amp; co"
    assert fields["command"] == "/connect-user" and fields["user_id"] == "U_REQ"
    assert next(iter(fields)) == "token" and list(fields)[-1] == "trigger_id"

    eph = json.loads(
        parse_qs(
            block_actions_body(
                action_id="pick", value="v", user_id="U1", ephemeral=True, response_url="http://r"
            )
        )["payload"][0]
    )
    assert "message" not in eph and eph["container"]["is_ephemeral"] is True
    assert eph["response_url"] == "http://r" and eph["actions"][0]["action_id"] == "pick"
    msg = json.loads(
        parse_qs(block_actions_body(action_id="a", value="v", user_id="U1"))["payload"][0]
    )
    assert msg["message"]["ts"] == msg["container"]["message_ts"] and "response_url" not in msg

    sub = json.loads(
        parse_qs(
            view_submission_body(
                callback_id="cb",
                values={"reason": {"value": "because"}},
                private_metadata="{}",
                user_id="U1",
            )
        )["payload"][0]
    )
    assert sub["type"] == "view_submission"
    assert sub["view"]["state"]["values"]["reason"]["value"]["value"] == "because"


async def test_views_publish_validates_and_keeps_one_home_per_user(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    fake.add_user("U1")
    home = {
        "type": "home",
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}],
    }
    first = await client.views_publish(user_id="U1", view=home)
    again = await client.views_publish(user_id="U1", view=home)
    assert first["view"]["id"] == again["view"]["id"], "republishing replaces the user's Home tab"
    assert fake.home_view("U1")["blocks"] == home["blocks"]
    assert fake.home_view("U2") is None

    too_many = {"type": "home", "blocks": home["blocks"] * 101}
    for view, user, error in (
        (too_many, "U1", "invalid_arguments"),
        ({**home, "type": "modal", "title": {"type": "plain_text", "text": "x"}}, "U1", None),
        (home, "UNOBODY", "user_not_found"),
    ):
        with pytest.raises(SlackApiError) as raised:
            await client.views_publish(user_id=user, view=view)
        if error:
            assert raised.value.response["error"] == error


async def test_the_fake_holds_payloads_to_the_tests_block_kit_rules(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    """One Block Kit validator (tests/support/blockkit.py) for the fake and the tests: payloads
    the fake used to take and the tests' checks refused are refused here as Slack would."""
    with pytest.raises(SlackApiError) as err:
        await client.chat_postMessage(channel="C1", text="t", blocks=[_section("   ")])
    assert err.value.response["error"] == "invalid_blocks"
    # Small in compact JSON (1 character an emoji), over budget as the tests measure (12 each).
    with pytest.raises(SlackApiError) as err:
        await client.chat_postMessage(channel="C1", text="t", blocks=[_section("😀" * 1500)])
    assert err.value.response["error"] == "msg_blocks_too_long"
    bad_input = _modal()
    bad_input["blocks"][0]["element"].update(min_length=50, max_length=10)
    with pytest.raises(SlackApiError) as err:
        await client.views_open(trigger_id="t-lengths", view=bad_input)
    assert err.value.response["error"] == "invalid_arguments"
    assert any("min_length" in m for m in err.value.response["response_metadata"]["messages"])
