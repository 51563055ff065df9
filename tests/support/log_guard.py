"""Every log record of every test is checked for secrets: tokens, the signing secret, the Connect
API key, every temp_ticket the fake Connect handed out, every response_url and Socket Mode ticket
the fake Slack issued.

Logging is set up as in production at its most verbose (DEBUG, with the bot's floors for libraries
that log request bodies), so a leak at any level the bot can be configured to show is caught.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator

import pytest

from bot.logs import QUIET_LOGGERS, JsonFormatter, RedactingFilter, RequestIdFilter
from tests.support import fake_connect as fake_connect_module
from tests.support import fake_slack as fake_slack_module

# The fakes' own servers log their access lines (with response_url paths): test infrastructure.
INFRASTRUCTURE_LOGGERS = ("aiohttp.access", "aiohttp.server", "uvicorn.access", "tests.")
ALWAYS_SECRET = (
    "xoxb-test-bot-token-0000",
    "test-signing-secret-0123456789abcdef",
    "metrics-scrape-token-0123456789",  # tests/e2e/test_metrics.py
    "xwfp-WORKFLOW-TOKEN-never-to-be-used",  # a workflow step's token (fake_slack)
)
MIN_SECRET_LENGTH = 8


class CapturingHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.formatter_ = JsonFormatter()
        self.addFilter(RequestIdFilter())
        # As configure_logging's handler: what is checked is what production would write.
        self.addFilter(RedactingFilter())
        self.texts: list[tuple[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(INFRASTRUCTURE_LOGGERS):
            return
        try:
            self.texts.append((record.name, self.formatter_.format(record)))
        except Exception as exc:  # a record that cannot even be formatted is a bug of its own
            self.texts.append((record.name, f"<unformattable record: {exc!r}>"))


def find_leaks(texts: Iterable[tuple[str, str]], secrets: Iterable[str]) -> list[str]:
    wanted = [secret for secret in set(secrets) if secret and len(secret) >= MIN_SECRET_LENGTH]
    leaks = []
    for name, text in texts:
        leaks.extend(
            f"{name}: …{secret[:6]}… in {text[:300]!r}" for secret in wanted if secret in text
        )
    return leaks


def current_secrets(connect_from: int, slack_from: int) -> set[str]:
    secrets = set(ALWAYS_SECRET)
    for fake in fake_connect_module.INSTANCES[connect_from:]:
        secrets.add(fake.api_key)
        secrets.update(fake.issued_tickets)
    for fake in fake_slack_module.INSTANCES[slack_from:]:
        secrets.update(fake.issued_response_urls)
        secrets.update(fake.issued_socket_tickets)
    return secrets


@pytest.fixture(autouse=True)
def no_secrets_in_logs() -> Iterator[CapturingHandler]:
    connect_from = len(fake_connect_module.INSTANCES)
    slack_from = len(fake_slack_module.INSTANCES)
    handler = CapturingHandler()
    root = logging.getLogger()
    saved = {name: logging.getLogger(name).level for name in QUIET_LOGGERS}
    saved_root = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    for name, floor in QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(floor)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(saved_root)
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)
    leaks = find_leaks(handler.texts, current_secrets(connect_from, slack_from))
    assert not leaks, "secrets reached the logs:\n" + "\n".join(leaks[:10])
