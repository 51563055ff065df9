"""Logging as configured in production (bot.logs.configure_logging): what no line may show."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from bot.logs import QUIET_LOGGERS, configure_logging

TICKET = "1a2b3c4d-5e6f-7a8b-9c0d-ticket-value"
WSS_URL = f"wss://wss-primary.slack.com/link/?ticket={TICKET}&app_id=A0APP"
# What aiohttp's WSServerHandshakeError says, and slack_sdk logs with it.
HANDSHAKE_ERROR = f"403, message='Invalid response status', url='{WSS_URL}'"


@pytest.fixture
def configured() -> Iterator[io.StringIO]:
    """Logging configured as `connect-user-bot` does it, into a buffer; restored afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {name: logging.getLogger(name).level for name in QUIET_LOGGERS}
    stream = io.StringIO()
    configure_logging("DEBUG", "json", stream=stream)
    try:
        yield stream
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        for name, saved in levels.items():
            logging.getLogger(name).setLevel(saved)


def lines(stream: io.StringIO) -> list[dict[str, str]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


class HandshakeError(Exception):
    pass


def test_a_socket_mode_ticket_in_a_message_is_redacted(configured: io.StringIO) -> None:
    log = logging.getLogger("slack_bolt")
    log.error(f"Failed to connect (error: {HANDSHAKE_ERROR}); Retrying...")
    log.warning("connecting to %s", WSS_URL)
    written = configured.getvalue()
    assert TICKET not in written
    first, second = lines(configured)
    assert "url='wss://wss-primary.slack.com/link/?<redacted>'" in first["message"]
    assert first["message"].startswith("Failed to connect (error: 403")
    assert second["message"] == "connecting to wss://wss-primary.slack.com/link/?<redacted>"


def test_a_socket_mode_ticket_in_an_exception_is_redacted(configured: io.StringIO) -> None:
    try:
        raise HandshakeError(HANDSHAKE_ERROR)
    except HandshakeError as exc:
        logging.getLogger("slack_sdk.socket_mode").exception("Failed to connect (error: %s)", exc)
    assert TICKET not in configured.getvalue()
    (line,) = lines(configured)
    assert "Traceback (most recent call last)" in line["exception"]
    assert "HandshakeError: 403, message='Invalid response status'" in line["exception"]
    assert "wss-primary.slack.com/link/?<redacted>" in line["exception"]


def test_a_ticket_outside_a_url_and_in_text_format_is_redacted() -> None:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    stream = io.StringIO()
    configure_logging("INFO", "text", stream=stream)
    try:
        logging.getLogger("bot.test").info("sent temp_ticket=%s to ws://127.0.0.1/x?a=1", TICKET)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    written = stream.getvalue()
    assert TICKET not in written and "a=1" not in written
    assert "sent temp_ticket=<redacted> to ws://127.0.0.1/x?<redacted>" in written


def test_other_messages_are_left_as_they_are(configured: io.StringIO) -> None:
    logging.getLogger("bot.test").info(
        "posted to %s (%d%%)", "https://slack.com/api/chat.postMessage?x=1", 100
    )
    (line,) = lines(configured)
    assert line["message"] == "posted to https://slack.com/api/chat.postMessage?x=1 (100%)"
