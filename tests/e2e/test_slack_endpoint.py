"""`POST /slack/events` as an attacker and as Slack would use it: the signature is checked over the
raw bytes before anything parses the body, the body is parsed the way Slack means it, and a
client that sends slowly is cut off."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlencode

import pytest

from bot.slack.ui import ids
from bot.web import slack_inbound
from bot.web.slack_inbound import VerifiedBoltRequest, signature_problem
from tests.support.bot_under_test import (
    APPROVER,
    REQUESTER,
    SIGNING_SECRET,
    BotUnderTest,
    response_text,
)
from tests.support.log_guard import CapturingHandler
from tests.support.slack_requests import (
    API_APP_ID,
    block_actions_body,
    event_callback_body,
    sign,
    slash_command_body,
    view_submission_body,
)

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
NESTED = b"[" * 100_000 + b"]" * 100_000

# (name, content type, body): what an attacker sends instead of a Slack request.
BAD_BODIES = [
    ("invalid JSON", JSON, b'{"type": "event_callback", '),
    ("JSON list", JSON, b"[1, 2, 3]"),
    ("JSON number", JSON, b"42"),
    ("JSON string", JSON, b'"payload"'),
    ("payload garbage", FORM, b"payload=garbage"),
    ("payload list", FORM, b"payload=%5B1%5D"),
    ("payload nested", FORM, b"payload=" + NESTED),
    ("form without a command", FORM, b"text=search+julie&user_id=U1"),
    ("nested brackets", JSON, NESTED),
    ("not UTF-8 form", FORM, b"command=/connect-user&text=\xff\xfe\xfd"),
    ("not UTF-8 JSON", JSON, b'{"type": "\xff\xfe"}'),
    ("form starting with {", FORM, b"{not json"),
]


@pytest.fixture
def server_errors() -> Iterator[CapturingHandler]:
    """uvicorn's own error log (it does not propagate to the root logger): a traceback of an
    unhandled exception lands there."""
    handler = CapturingHandler()
    logger = logging.getLogger("uvicorn.error")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def problems_in_logs(*handlers: CapturingHandler) -> list[str]:
    found = []
    for handler in handlers:
        for name, text in handler.texts:
            record = json.loads(text)
            if record["level"] in ("ERROR", "CRITICAL") or "Traceback" in text:
                found.append(f"{name}: {text[:300]}")
    return found


def signed_bytes(body: bytes, secret: str = SIGNING_SECRET, timestamp: int | None = None) -> dict:
    """Signature headers over raw bytes (tests.support.slack_requests.sign needs text)."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256)
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": "v0=" + digest.hexdigest()}


@pytest.fixture(autouse=True)
def _forget_start_up_calls(bot: BotUnderTest) -> None:
    """The bot reads the approver channel (Slack) and the login provider's flags (Connect) when it
    starts; only what a request causes counts."""
    bot.slack.reset()
    bot.connect.reset_calls()


def assert_nothing_happened(bot: BotUnderTest) -> None:
    assert bot.slack.calls == [], "an unsigned request reached a listener"
    assert bot.connect.count() == 0
    assert bot.runtime.supervisor.in_flight == 0


# -- verify before parse -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content_type", "body"), BAD_BODIES, ids=[b[0] for b in BAD_BODIES]
)
async def test_unsigned_bad_bodies_are_401_without_a_traceback(
    bot: BotUnderTest,
    no_secrets_in_logs: CapturingHandler,
    server_errors: CapturingHandler,
    name: str,
    content_type: str,
    body: bytes,
) -> None:
    headers_variants = [
        {},
        {"X-Slack-Request-Timestamp": str(int(time.time())), "X-Slack-Signature": "v0=00"},
        {**signed_bytes(body, secret="not-the-secret")},
        {"X-Slack-Request-Timestamp": "not-a-number", "X-Slack-Signature": "v0=00"},
        {"X-Slack-Request-Timestamp": "9" * 5000, "X-Slack-Signature": "v0=00"},
        {**signed_bytes(body, timestamp=int(time.time()) - 600)},
        # A header byte that is not ASCII (latin-1 decoded by the server).
        {"X-Slack-Request-Timestamp": str(int(time.time())), "X-Slack-Signature": b"v0=\xff"},
    ]
    for extra in headers_variants:
        response = await bot.http.post(
            "/slack/events", content=body, headers={"Content-Type": content_type, **extra}
        )
        assert response.status_code == 401, (name, extra, response.text)
    assert not problems_in_logs(no_secrets_in_logs, server_errors)
    assert_nothing_happened(bot)


@pytest.mark.parametrize(
    ("name", "content_type", "body"), BAD_BODIES, ids=[b[0] for b in BAD_BODIES]
)
async def test_signed_bad_bodies_are_400_without_a_traceback(
    bot: BotUnderTest,
    no_secrets_in_logs: CapturingHandler,
    server_errors: CapturingHandler,
    name: str,
    content_type: str,
    body: bytes,
) -> None:
    response = await bot.http.post(
        "/slack/events",
        content=body,
        headers={"Content-Type": content_type, **signed_bytes(body)},
    )
    assert response.status_code == 400, (name, response.status_code, response.text)
    assert not problems_in_logs(no_secrets_in_logs, server_errors)
    assert_nothing_happened(bot)


async def test_unsigned_valid_requests_never_reach_a_listener(bot: BotUnderTest) -> None:
    response_url = bot.slack.new_response_url()
    bodies = [
        (
            FORM,
            slash_command_body(text="search julie", user_id=REQUESTER, response_url=response_url),
        ),
        (
            FORM,
            block_actions_body(
                action_id=ids.ACTION_APPROVE, value="0123456789abcdef", user_id=APPROVER
            ),
        ),
        (
            FORM,
            view_submission_body(
                callback_id=ids.VIEW_JUSTIFICATION,
                values={},
                private_metadata="",
                user_id=REQUESTER,
            ),
        ),
        (JSON, event_callback_body({"type": "app_home_opened", "user": REQUESTER, "tab": "home"})),
    ]
    for content_type, body in bodies:
        for headers in ({}, sign(body, "not-the-secret")):
            headers = {**headers, "Content-Type": content_type}
            response = await bot.http.post("/slack/events", content=body, headers=headers)
            assert response.status_code == 401
    await asyncio.sleep(0.2)
    assert_nothing_happened(bot)
    assert bot.slack.responses(response_url) == []


async def test_bolts_own_check_still_refuses_what_the_route_did_not_verify(
    bot: BotUnderTest,
) -> None:
    """Defence in depth: a parsed request handed to Bolt without a valid signature is refused
    by Bolt's own middleware, which stays on in HTTP mode."""
    body = slash_command_body(text="help", response_url=bot.slack.new_response_url())
    request = VerifiedBoltRequest(
        raw_body=body,
        body=dict(parse_qsl(body)),
        headers={k.lower(): [v] for k, v in sign(body, "not-the-secret").items()},
    )
    response = await bot.runtime.bolt.async_dispatch(request)
    assert response.status == 401
    assert_nothing_happened(bot)


def test_signature_problem_names_each_failure() -> None:
    body = b"text=hi"
    good = signed_bytes(body)
    ts, sig = good["X-Slack-Request-Timestamp"], good["X-Slack-Signature"]
    assert signature_problem(SIGNING_SECRET, body, ts, sig) is None
    assert signature_problem(SIGNING_SECRET, body, None, sig) == "no signature"
    assert signature_problem(SIGNING_SECRET, body, "12a", sig) == "malformed timestamp"
    assert signature_problem(SIGNING_SECRET, body, ts, sig, now=int(ts) + 301) == (
        "timestamp outside the five-minute window"
    )
    assert signature_problem(SIGNING_SECRET, body, ts, sig, now=int(ts) - 299) is None
    assert signature_problem(SIGNING_SECRET, body + b" ", ts, sig) == "wrong signature"
    assert signature_problem(SIGNING_SECRET, body, ts, "v0=é") == "malformed signature"


# -- parse the way Slack means it ---------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"text": "search payload"},
        {"text": "search payload=x"},
        {"text": "help", "channel_name": "payload-team"},
        {"text": "help", "user_name": "payload.person"},
        {"text": "help", "team_domain": "payload"},
    ],
)
async def test_slash_commands_work_whatever_words_their_fields_hold(
    bot: BotUnderTest, fields: dict[str, str]
) -> None:
    response_url = bot.slack.new_response_url()
    body = slash_command_body(response_url=response_url, user_id=REQUESTER, **fields)
    response = await bot.post(body)
    assert response.status_code == 200, response.text
    await bot.settle()
    answer = (await bot.slack.wait_for_response(response_url))[-1]
    assert answer["response_type"] == "ephemeral"
    text = response_text(answer)
    if fields["text"].startswith("search"):
        assert "payload" in text  # the prefix searched for, quoted back
    else:
        assert "/connect-user search" in text  # the usage


async def test_interactions_and_events_keep_working(bot: BotUnderTest) -> None:
    # block_actions: an unknown button is answered through its response_url.
    response, response_url = await bot.click("frobnicate", "x", user_id=APPROVER)
    assert response.status_code == 200
    await bot.settle()
    assert bot.slack.responses(response_url)

    # view_submission: an unknown form is answered in the form.
    response = await bot.submit("some_old_form", {}, "", user_id=REQUESTER)
    assert response.status_code == 200 and response.json()["response_action"] == "update"

    # block_suggestion: the bot has no external selects; an empty list, not a 404 or 5xx.
    suggestion = {
        "type": "block_suggestion",
        "user": {"id": REQUESTER, "team_id": "T0001"},
        "team": {"id": "T0001", "domain": "test"},
        "api_app_id": API_APP_ID,
        "action_id": "anything",
        "block_id": "b",
        "value": "payload",
        "view": {"id": "V1", "type": "modal", "callback_id": "x", "private_metadata": ""},
    }
    response = await bot.post(urlencode({"payload": json.dumps(suggestion)}))
    assert response.status_code == 200
    assert response.json() == {"options": []}

    # An Events API delivery (JSON).
    event = {"type": "app_home_opened", "user": REQUESTER, "channel": "DREQ", "tab": "home"}
    response = await bot.post(event_callback_body(event))
    assert response.status_code == 200
    await bot.slack.wait_for("views.publish")

    # url_verification, signed, as Slack sends it when the events URL is saved.
    challenge = {"token": "x", "challenge": "c-123", "type": "url_verification"}
    response = await bot.post(json.dumps(challenge))
    assert response.status_code == 200 and response.json() == {"challenge": "c-123"}


async def test_slacks_unsigned_ssl_check_is_answered_and_nothing_else(bot: BotUnderTest) -> None:
    for body in ("ssl_check=1&token=abc", "token=abc&ssl_check=1", "ssl_check=1"):
        response = await bot.http.post(
            "/slack/events", content=body, headers={"Content-Type": FORM}
        )
        assert response.status_code == 200 and response.content == b"", body
    # Anything more than the probe is an ordinary request and must be signed.
    for body in (
        "ssl_check=1&command=/connect-user&text=help",
        "ssl_check=0&token=abc",
        "ssl_check=1&ssl_check=1",
    ):
        response = await bot.http.post(
            "/slack/events", content=body, headers={"Content-Type": FORM}
        )
        assert response.status_code == 401, body
    assert_nothing_happened(bot)


# -- a client that sends slowly ----------------------------------------------------------------


async def test_a_client_that_trickles_its_body_is_cut_off(
    bot: BotUnderTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(slack_inbound, "BODY_READ_SECONDS", 1.0)
    host, port = bot.base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    body = slash_command_body(text="help", response_url=bot.slack.new_response_url()).encode()
    headers = sign(body.decode(), SIGNING_SECRET)
    head = (
        "POST /slack/events HTTP/1.1\r\n"
        f"Host: {host}\r\n"
        f"Content-Type: {FORM}\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"X-Slack-Request-Timestamp: {headers['X-Slack-Request-Timestamp']}\r\n"
        f"X-Slack-Signature: {headers['X-Slack-Signature']}\r\n\r\n"
    )
    writer.write(head.encode())
    await writer.drain()
    started = time.monotonic()

    async def trickle() -> None:
        for byte in body:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(0.1)

    sender = asyncio.create_task(trickle())
    try:
        answer = await asyncio.wait_for(reader.read(1024), timeout=6)
    finally:
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
        writer.close()
    elapsed = time.monotonic() - started
    assert answer == b"" or answer.startswith(b"HTTP/1.1 408"), answer[:80]
    assert elapsed < 4, f"cut off after {elapsed:.1f}s"
    assert_nothing_happened(bot)


async def test_a_client_that_hangs_up_mid_body_is_no_server_error(
    bot: BotUnderTest,
    no_secrets_in_logs: CapturingHandler,
    server_errors: CapturingHandler,
) -> None:
    """Anyone can send headers and half a body, then close: no signature is needed, so this must
    not write an ERROR with a traceback (a way to flood the logs)."""
    host, port = bot.base_url.removeprefix("http://").split(":")
    body = slash_command_body(text="help", response_url=bot.slack.new_response_url()).encode()
    headers = sign(body.decode(), SIGNING_SECRET)
    head = (
        "POST /slack/events HTTP/1.1\r\n"
        f"Host: {host}\r\n"
        f"Content-Type: {FORM}\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"X-Slack-Request-Timestamp: {headers['X-Slack-Request-Timestamp']}\r\n"
        f"X-Slack-Signature: {headers['X-Slack-Signature']}\r\n\r\n"
    )
    _, writer = await asyncio.open_connection(host, int(port))
    writer.write(head.encode() + body[: len(body) // 2])
    await writer.drain()
    await asyncio.sleep(0.2)  # the route is reading the body
    writer.close()
    await writer.wait_closed()

    def seen() -> list[str]:
        return [
            text
            for handler in (no_secrets_in_logs, server_errors)
            for _, text in handler.texts
            if "closed the connection" in text or '"ERROR"' in text
        ]

    for _ in range(300):
        if seen():
            break
        await asyncio.sleep(0.01)
    assert seen(), "the refusal is logged (at INFO)"
    assert not problems_in_logs(no_secrets_in_logs, server_errors)
    assert_nothing_happened(bot)
