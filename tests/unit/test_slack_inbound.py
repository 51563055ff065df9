"""Reading Slack's request bodies (bot.web.slack_inbound.read_body) over an in-process ASGI
request: the limits, a malformed Content-Length, a client that hangs up."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from bot.web.slack_inbound import BodyRefused, read_body

Message = dict[str, object]


def request(content_length: str | None, *messages: Message) -> Request:
    headers = [(b"content-type", b"application/x-www-form-urlencoded")]
    if content_length is not None:
        # ASGI header values are bytes, which Starlette reads as latin-1.
        headers.append((b"content-length", content_length.encode("latin-1")))
    queue = list(messages)

    async def receive() -> Message:
        return queue.pop(0) if queue else {"type": "http.disconnect"}

    scope = {"type": "http", "method": "POST", "path": "/slack/events", "headers": headers}
    return Request(scope, receive)


def chunk(data: bytes, *, more: bool = False) -> Message:
    return {"type": "http.request", "body": data, "more_body": more}


async def test_a_whole_body_is_read() -> None:
    body = await read_body(request("7", chunk(b"a=1", more=True), chunk(b"&b=2")))
    assert body == b"a=1&b=2"


@pytest.mark.parametrize("length", ["²", "1³", "12a", "-1", " ", "", "9" * 5000])
async def test_a_content_length_that_is_not_ascii_digits_is_a_400(length: str) -> None:
    with pytest.raises(BodyRefused) as refused:
        await read_body(request(length, chunk(b"a=1")))
    assert refused.value.status == 400


async def test_a_declared_length_over_the_limit_is_a_413_unread() -> None:
    with pytest.raises(BodyRefused) as refused:
        await read_body(request("11", chunk(b"a=1")), limit=10)
    assert refused.value.status == 413


async def test_a_body_over_the_limit_is_a_413() -> None:
    with pytest.raises(BodyRefused) as refused:
        await read_body(request(None, chunk(b"x" * 8, more=True), chunk(b"x" * 8)), limit=10)
    assert refused.value.status == 413


async def test_a_client_that_hangs_up_mid_body_is_a_400() -> None:
    with pytest.raises(BodyRefused) as refused:
        await read_body(request("100", chunk(b"a=1", more=True), {"type": "http.disconnect"}))
    assert refused.value.status == 400
