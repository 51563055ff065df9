"""Slack's requests to `POST /slack/events`: read within limits, verified, then parsed.

Bolt 1.x builds its request object, and so parses the body, before its own signature check runs:
an unsigned body that is not JSON, or not UTF-8, raised inside Bolt and became a 500 with a
traceback. Its parser also takes any form body containing the substring `payload` for an
interaction, so `/connect-user search payload` (or a command from `#payload-team`) parsed as `{}`
and was answered 404. So the route does both jobs itself, in this order: read the bytes (bounded
in size and time), check the signature over exactly those bytes, and only then parse them, the way
Slack means them. Bolt receives the parsed body and never parses anything.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl

from slack_bolt.request.async_request import AsyncBoltRequest
from starlette.requests import ClientDisconnect, Request

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
SLACK_CONTENT_TYPES = (FORM, JSON)
# Slack's payloads are a few kilobytes; anything far larger is not Slack and is refused unread.
MAX_SLACK_BODY_BYTES = 256 * 1024
# Slack sends a whole request at once; a client that trickles its body only holds a connection.
BODY_READ_SECONDS = 10.0
# Slack's own rule: a timestamp more than five minutes away is a replay.
SIGNATURE_MAX_AGE_SECONDS = 5 * 60
# Slack's certificate probe (`ssl_check=1&token=…`) is the one request it does not sign.
_SSL_CHECK_MAX_BYTES = 512
_SSL_CHECK_KEYS = frozenset({"ssl_check", "token"})


class BodyRefused(Exception):
    """The body was not read: too large (413), too slow (408), a malformed Content-Length or a
    client that hung up before sending all of it (400)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class MalformedBody(ValueError):
    """A correctly signed body that is not what Slack sends; the message names why (400)."""


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


async def read_body(
    request: Request,
    *,
    limit: int = MAX_SLACK_BODY_BYTES,
    seconds: float = BODY_READ_SECONDS,
) -> bytes:
    """The whole body, or BodyRefused when it is larger than `limit`, takes longer than
    `seconds` in all to arrive, or never arrives whole (the client hung up)."""
    length = request.headers.get("content-length")
    if length is not None:
        # str.isdigit() alone accepts "²" and other digits int() refuses.
        if not (length.isascii() and length.isdigit()) or len(length) > 12:
            raise BodyRefused(400, "Malformed Content-Length")
        if int(length) > limit:
            raise BodyRefused(413, "Request body too large")
    body = bytearray()
    try:
        async with asyncio.timeout(seconds):
            async for chunk in request.stream():
                body.extend(chunk)
                if len(body) > limit:
                    raise BodyRefused(413, "Request body too large")
    except TimeoutError:
        raise BodyRefused(408, "Request body not received in time") from None
    except ClientDisconnect:
        # Anyone can do this without a signature: a refusal like any other, not a server error.
        raise BodyRefused(400, "The client closed the connection before sending the body") from None
    return bytes(body)


def signature_problem(
    secret: str,
    body: bytes,
    timestamp: str | None,
    signature: str | None,
    *,
    now: float | None = None,
) -> str | None:
    """Why the request is not signed by Slack with `secret`, or None when it is.

    The HMAC is computed over the raw bytes as received (`v0:<timestamp>:<body>`), so nothing
    is decoded or parsed before this answers. Malformed headers are simply "not signed": unlike
    slack_sdk's verifier, nothing here raises on a non-numeric timestamp, a non-ASCII signature
    or a body that is not UTF-8.
    """
    if not timestamp or not signature:
        return "no signature"
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
        return "malformed timestamp"
    current = time.time() if now is None else now
    if abs(current - int(timestamp)) > SIGNATURE_MAX_AGE_SECONDS:
        return "timestamp outside the five-minute window"
    if not signature.isascii():
        return "malformed signature"
    digest = hmac.new(
        secret.encode("utf-8"), b"v0:" + timestamp.encode("ascii") + b":" + body, hashlib.sha256
    ).hexdigest()
    if not hmac.compare_digest(f"v0={digest}".encode("ascii"), signature.encode("ascii")):
        return "wrong signature"
    return None


def is_ssl_check(content_type: str, body: bytes, headers: Mapping[str, str]) -> bool:
    """Slack's unsigned certificate probe: a tiny form holding `ssl_check=1` (and a token), with
    no signature headers. Answered 200 with an empty body and nothing else, as Bolt would."""
    if media_type(content_type) != FORM or len(body) > _SSL_CHECK_MAX_BYTES:
        return False
    if "x-slack-signature" in headers or not body.isascii():
        return False
    fields = parse_qsl(body.decode("ascii"), keep_blank_values=True)
    keys = [key for key, _ in fields]
    return (
        len(keys) == len(set(keys))
        and set(keys) <= _SSL_CHECK_KEYS
        and dict(fields).get("ssl_check") == "1"
    )


def parse_body(content_type: str, body: bytes) -> tuple[str, dict[str, Any]]:
    """The body as text (what Bolt keeps as `raw_body`) and as Slack means it.

    JSON bodies are Events API deliveries (and url_verification); a form body is an interaction
    only when it has a top-level `payload` field (`payload=<json>`), and otherwise a slash command
    (or ssl_check), whatever words its fields hold.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedBody("the body is not UTF-8") from None
    kind = media_type(content_type)
    if kind == JSON:
        return text, _json_object(text, "the body")
    if kind != FORM:
        raise MalformedBody(f"unsupported content type {kind!r}")
    fields = parse_qsl(text, keep_blank_values=True)
    payloads = [value for key, value in fields if key == "payload"]
    if len(payloads) > 1:
        raise MalformedBody("the form has more than one payload")
    if payloads:
        return text, _json_object(payloads[0], "the payload")
    form = dict(fields)
    if "command" not in form and "ssl_check" not in form:
        raise MalformedBody("the form is neither a slash command nor an interaction")
    return text, form


def _json_object(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except RecursionError:
        raise MalformedBody(f"{what} is nested too deeply") from None
    except ValueError:
        raise MalformedBody(f"{what} is not valid JSON") from None
    if not isinstance(value, dict):
        raise MalformedBody(f"{what} is not a JSON object")
    return value


class VerifiedBoltRequest(AsyncBoltRequest):
    """A Bolt request built from a body the route has verified and parsed.

    Bolt's own constructor would parse `raw_body` again with its substring test for `payload`;
    here the parsed dict is given and kept. `raw_body` stays the verified text, so Bolt's own
    signature middleware (still on in HTTP mode) checks the same bytes a second time.
    """

    def __init__(
        self,
        *,
        raw_body: str,
        body: dict[str, Any],
        query: Mapping[str, str | Sequence[str]] | None = None,
        headers: Mapping[str, Sequence[str]] | None = None,
        context: dict[str, Any] | None = None,
    ) -> None:
        # Bolt's Socket Mode branch is the one that takes a dict body without parsing it; the
        # request is then switched back to HTTP mode, which is what it is.
        super().__init__(
            body=body,
            query=dict(query) if query is not None else None,
            headers=dict(headers) if headers is not None else None,
            context=context,
            mode="socket_mode",
        )
        self.raw_body = raw_body
        self.mode = "http"

    def to_copyable(self) -> VerifiedBoltRequest:
        # Bolt copies requests for lazy listeners; its own copy would re-parse raw_body.
        return VerifiedBoltRequest(
            raw_body=self.raw_body,
            body=self.body,
            query=self.query,
            headers=self.headers,
            context=self.context.to_copyable(),
        )
