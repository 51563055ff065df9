"""bot/slack/respond.py: each channel of delivery, and the fall-back chains, against the fake
Slack Web API (response_urls included). The log guard checks that no response_url is logged."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack import respond
from bot.slack.interactions import Click
from bot.slack.ui.refusals import refusal_message
from tests.support.bot_under_test import BOT_TOKEN, REQUESTER
from tests.support.fake_slack import FakeSlack

MESSAGE = refusal_message("Only approvers can do that.")
CHANNEL = "CGENERAL"


@pytest.fixture
async def client(fake_slack: FakeSlack) -> AsyncIterator[AsyncWebClient]:
    fake_slack.add_channel(CHANNEL, members=["U0BOT", REQUESTER])
    yield AsyncWebClient(token=BOT_TOKEN, base_url=fake_slack.api_url)


def told(fake_slack: FakeSlack) -> list[str]:
    """Which channels reached the person, in order."""
    ways = [("response_url", post.time) for post in fake_slack.response_posts() if post.accepted]
    ways += [("ephemeral", c.time) for c in fake_slack.calls_to("chat.postEphemeral") if c.ok]
    ways += [("dm", c.time) for c in fake_slack.calls_to("chat.postMessage") if c.ok]
    return [way for way, _ in sorted(ways, key=lambda w: w[1])]


class FakeHome:
    def __init__(self, ok: bool) -> None:
        self.ok, self.notices = ok, []

    async def publish(self, user_id: str, *, notice: dict | None = None) -> bool:
        self.notices.append((user_id, notice))
        return self.ok


async def test_via_response_url_is_ephemeral_and_can_replace(fake_slack, client) -> None:
    url = fake_slack.new_response_url()
    assert await respond.via_response_url(url, MESSAGE, replace=True, session=client.session)
    (body,) = fake_slack.responses(url)
    assert body["response_type"] == "ephemeral" and body["replace_original"] is True
    assert body["text"] == MESSAGE["text"]
    assert not await respond.via_response_url(None, MESSAGE)


async def test_via_response_url_says_when_slack_refused(fake_slack, caplog) -> None:
    url = fake_slack.new_response_url()
    fake_slack.set_response_url_status(url, 404)
    with caplog.at_level(logging.WARNING):
        assert not await respond.via_response_url(url, MESSAGE)
    assert "a response_url answered 404" in caplog.text
    assert url not in caplog.text


async def test_privately_prefers_the_response_url(fake_slack, client) -> None:
    url = fake_slack.new_response_url()
    await respond.privately(
        client, user_id=REQUESTER, message=MESSAGE, response_url=url, channel=CHANNEL
    )
    assert told(fake_slack) == ["response_url"]


async def test_privately_falls_back_to_ephemeral_then_to_a_dm(fake_slack, client) -> None:
    url = fake_slack.new_response_url()
    fake_slack.set_response_url_status(url, 404)
    await respond.privately(
        client, user_id=REQUESTER, message=MESSAGE, response_url=url, channel=CHANNEL
    )
    assert told(fake_slack) == ["ephemeral"]
    fake_slack.fail("chat.postEphemeral", error="user_not_in_channel")
    await respond.privately(
        client, user_id=REQUESTER, message=MESSAGE, response_url=url, channel=CHANNEL
    )
    assert told(fake_slack) == ["ephemeral", "dm"]
    dm = fake_slack.calls_to("chat.postMessage")[-1].args
    assert dm["channel"].startswith("D") and "unfurl_links" not in dm


async def test_privately_without_url_or_channel_is_a_dm(fake_slack, client) -> None:
    await respond.privately(client, user_id=REQUESTER, message=MESSAGE)
    assert told(fake_slack) == ["dm"]


async def test_privately_logs_when_nothing_reached_the_person(fake_slack, client, caplog) -> None:
    fake_slack.fail("conversations.open", error="user_not_found")
    with caplog.at_level(logging.ERROR):
        await respond.privately(client, user_id=REQUESTER, message=MESSAGE)
    assert f"could not tell {REQUESTER} anything: user_not_found" in caplog.text


async def test_direct_message_raises_for_the_outbox_to_retry(fake_slack, client) -> None:
    fake_slack.fail("chat.postMessage", error="channel_not_found")
    with pytest.raises(SlackApiError):
        await respond.direct_message(client, REQUESTER, MESSAGE, unfurl=False)
    await respond.direct_message(client, REQUESTER, MESSAGE, unfurl=False)
    sent = fake_slack.calls_to("chat.postMessage")[-1].args
    assert sent["unfurl_links"] is False and sent["unfurl_media"] is False


@pytest.mark.parametrize("published", [True, False])
async def test_on_home_tab_else_a_dm(fake_slack, client, published: bool) -> None:
    home = FakeHome(ok=published)
    await respond.on_home_tab(client, home, REQUESTER, MESSAGE)  # type: ignore[arg-type]
    assert home.notices == [(REQUESTER, MESSAGE)]
    assert told(fake_slack) == ([] if published else ["dm"])


async def test_to_clicker_answers_where_the_click_was_made(fake_slack, client) -> None:
    home = FakeHome(ok=True)
    on_home = Click(value="x", user_id=REQUESTER, response_url=None, channel=None, from_home=True)
    await respond.to_clicker(client, on_home, MESSAGE, home=home)  # type: ignore[arg-type]
    assert home.notices == [(REQUESTER, MESSAGE)] and told(fake_slack) == []
    url = fake_slack.new_response_url()
    on_message = Click(value="x", user_id=REQUESTER, response_url=url, channel=CHANNEL)
    await respond.to_clicker(client, on_message, MESSAGE, home=home, replace=True)  # type: ignore[arg-type]
    assert told(fake_slack) == ["response_url"] and len(home.notices) == 1
    assert fake_slack.responses(url)[0]["replace_original"] is True
