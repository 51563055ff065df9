"""Logging: one JSON object per line in production, readable lines in development, and a request id
that follows a provisioning request from the slash command to the DM."""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sys
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Literal, TextIO

# The provisioning request's id once there is one; before that, an id for the Slack interaction.
# Tasks spawned while it is set inherit it (asyncio copies the context into new tasks).
request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

# Libraries that log secrets or personal data at DEBUG (slack_sdk: request bodies and
# response_urls; httpx: full URLs with search prefixes) never go below INFO/WARNING.
QUIET_LOGGERS = {
    "slack_sdk": logging.INFO,
    "slack_bolt": logging.INFO,
    "httpx": logging.WARNING,
    "httpcore": logging.WARNING,
    "aiosqlite": logging.INFO,
    "asyncio": logging.INFO,
    "sqlalchemy.engine": logging.WARNING,
    # "setup plugin alembic.autogenerate.…" at every start: set-up chatter, not news.
    "alembic.runtime.plugins": logging.WARNING,
}


class _AlembicChatter(logging.Filter):
    """Drops Alembic's "Context impl SQLiteImpl." and "Will assume … DDL." lines; keeps the
    "Running upgrade …" lines, which say what a start changed."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(("Context impl", "Will assume"))


ALEMBIC_CHATTER = _AlembicChatter()


REDACTED = "<redacted>"
# A Socket Mode URL (wss://wss-primary.slack.com/link/?ticket=…&app_id=…) carries a ticket that
# opens a connection as the app, and libraries quote it: slack_sdk logs aiohttp's failed
# handshake (`WSServerHandshakeError: …, url='wss://…?ticket=…'`) with its traceback at ERROR.
# Any websocket URL loses its query string, and any `ticket=` its value, in every line.
_WEBSOCKET_QUERY = re.compile(r"(wss?://[^\s?#'\"<>]*)\?[^\s#'\"<>]*", re.IGNORECASE)
_TICKET = re.compile(r"(ticket=)[^&\s'\"<>]+", re.IGNORECASE)
_MAY_HOLD_A_TICKET = re.compile(r"ticket=|wss?://", re.IGNORECASE)
_EXCEPTION_TEXT = logging.Formatter()


def redact(text: str) -> str:
    """`text` without websocket query strings or ticket values."""
    if not _MAY_HOLD_A_TICKET.search(text):
        return text
    text = _WEBSOCKET_QUERY.sub(rf"\1?{REDACTED}", text)
    return _TICKET.sub(rf"\1{REDACTED}", text)


class RedactingFilter(logging.Filter):
    """Redacts Socket Mode tickets (see `redact`) from a record's message, exception and stack
    text, whichever library logged it. On the handler, so records of every logger pass it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True  # the formatter reports a record it cannot format
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        text = record.exc_text
        if not text and record.exc_info:
            text = _EXCEPTION_TEXT.formatException(record.exc_info)
        if text:
            cleaned = redact(text)
            if cleaned != text:
                # The traceback is kept as text; no formatter may render the original again.
                record.exc_info, record.exc_text = None, cleaned
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


@contextlib.contextmanager
def bind_request_id(request_id: str | None) -> Iterator[None]:
    token = request_id_var.set(request_id)
    try:
        yield
    finally:
        request_id_var.reset(token)


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id:
            entry["request_id"] = request_id
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:  # also when only the (redacted) text is left: RedactingFilter
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s%(rid)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        request_id = getattr(record, "request_id", None)
        record.rid = f" [{request_id}]" if request_id else ""
        return super().format(record)


def configure_logging(
    level: str, log_format: Literal["json", "text", "auto"] = "auto", stream: TextIO | None = None
) -> None:
    stream = stream or sys.stderr
    if log_format == "auto":
        log_format = "text" if stream.isatty() else "json"
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(RequestIdFilter())
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    numeric = logging.getLevelName(level)
    for name, floor in QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(max(floor, numeric))
    logging.getLogger("alembic.runtime.migration").addFilter(ALEMBIC_CHATTER)
