"""Logging: one JSON object per line in production, readable lines in development, and a request id
that follows a provisioning request from the slash command to the DM."""

from __future__ import annotations

import contextlib
import json
import logging
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
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
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
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    numeric = logging.getLevelName(level)
    for name, floor in QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(max(floor, numeric))
    logging.getLogger("alembic.runtime.migration").addFilter(ALEMBIC_CHATTER)
