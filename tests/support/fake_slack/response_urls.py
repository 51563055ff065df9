"""The response_url endpoint: URLs handed out for requests, the posts they receive — accepted, or
refused as Slack refuses them (a bad payload, an expired URL, a sixth use) — and their edits of
the message they belong to."""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.support import blockkit

RESPONSE_URL_MAX_USES = 5


@dataclass(frozen=True)
class ResponsePost:
    """One POST to a response_url, with the status the fake answered."""

    url: str
    body: dict[str, Any]
    status: int
    answer: str
    time: float

    @property
    def accepted(self) -> bool:
        return 200 <= self.status < 300


@dataclass
class _ResponseUrl:
    channel: str | None = None
    message_ts: str | None = None


class ResponseUrls:
    """response_urls and their posts (``response_url_max_uses``: see FakeSlack). Part of
    FakeSlack (server.py), whose lock guards the posts."""

    _lock: threading.RLock

    def _init_response_urls(self) -> None:
        self.response_url_max_uses: int | None = RESPONSE_URL_MAX_USES
        self._posts: list[ResponsePost] = []
        self._response_urls: dict[str, _ResponseUrl] = {}
        self._response_status: dict[str | None, int] = {}

    def _reset_response_urls(self, *, config: bool) -> None:
        """Forget the posts; with ``config`` also the URLs handed out and their statuses (under
        the lock)."""
        self._posts.clear()
        if config:
            self._response_urls.clear()
            self._response_status.clear()

    def new_response_url(self, *, channel: str | None = None, message_ts: str | None = None) -> str:
        """A fresh response_url on this server.

        Tie it to a message (``channel``, ``message_ts``) to have ``replace_original`` /
        ``delete_original`` posts edit that message's state in :meth:`message`.
        """
        rid = secrets.token_hex(12)
        url = f"{self.base_url}/response/{rid}"
        with self._lock:
            self._response_urls[url] = _ResponseUrl(channel=channel, message_ts=message_ts)
        return url

    @property
    def issued_response_urls(self) -> list[str]:
        """Every response_url handed out (each is a credential for its message)."""
        with self._lock:
            return list(self._response_urls)

    def set_response_url_status(self, url: str | None, status: int | None) -> None:
        """Answer posts to ``url`` (``None``: every response_url) with ``status`` (e.g. 404 for an
        expired URL). ``status=None`` removes the override."""
        with self._lock:
            if status is None:
                self._response_status.pop(url, None)
            else:
                self._response_status[url] = status

    def response_posts(self, url: str | None = None) -> list[ResponsePost]:
        """Every POST to a response_url (``url=None``: all URLs), accepted or not, in order."""
        with self._lock:
            return [p for p in self._posts if url is None or p.url == url]

    def responses(self, url: str | None = None, *, include_rejected: bool = False) -> list[dict]:
        """JSON bodies posted to a response_url and accepted (2xx), in order.

        Rejected posts (404 expired/used, 400 invalid_blocks) are left out unless
        ``include_rejected=True``: Slack would not have shown them.
        """
        return [p.body for p in self.response_posts(url) if include_rejected or p.accepted]

    async def wait_for_response(
        self,
        url: str | None,
        count: int = 1,
        timeout: float = 5.0,
        *,
        include_rejected: bool = False,
    ) -> list[dict]:
        deadline = time.monotonic() + timeout
        while True:
            bodies = self.responses(url, include_rejected=include_rejected)
            if len(bodies) >= count:
                return bodies
            if time.monotonic() >= deadline:
                seen = "\n".join(
                    f"  {p.url} -> {p.status} {p.answer} {json.dumps(p.body, default=str)[:300]}"
                    for p in self.response_posts()
                )
                raise AssertionError(
                    f"timed out after {timeout} s waiting for {count} accepted post(s) to "
                    f"{url or 'any response_url'}; got {len(bodies)}. Posts seen:\n"
                    f"{seen or '  (none)'}\nAPI calls seen:\n{self._describe_calls()}"
                )
            await asyncio.sleep(0.01)

    async def _handle_response_url(self, request: web.Request) -> web.Response:
        url = f"{self.base_url}/response/{request.match_info['rid']}"
        raw = await request.read()
        body: Any
        try:
            if request.content_type == "application/x-www-form-urlencoded":
                form = await request.post()
                body = json.loads(str(form.get("payload", "")))
            else:
                body = json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            body = None
        status, answer = 200, "ok"
        if not isinstance(body, dict):
            status, answer = 400, "invalid_payload"
            body = {"_raw": raw.decode("utf-8", "replace")}
        with self._lock:
            override = self._response_status.get(url, self._response_status.get(None))
            used = sum(1 for p in self._posts if p.url == url and p.accepted)
            link = self._response_urls.get(url)
        if status == 200 and override is not None and override != 200:
            status = override
            answer = {404: "expired_url", 410: "expired_url", 500: "internal_error"}.get(
                override, "error"
            )
        elif (
            status == 200
            and self.response_url_max_uses is not None
            and used >= self.response_url_max_uses
        ):
            status, answer = 404, "used_url"
        elif status == 200:
            problem = blockkit.response_payload_problem(body)
            if problem is not None:
                status, answer = 400, problem
        post = ResponsePost(url=url, body=body, status=status, answer=answer, time=time.time())
        with self._lock:
            self._posts.append(post)
            if post.accepted and link and link.channel and link.message_ts:
                msg = self._messages.get((link.channel, link.message_ts))
                if msg is not None:
                    if body.get("delete_original"):
                        msg["deleted"] = True
                    elif body.get("replace_original"):
                        msg["text"] = body.get("text", "")
                        msg["blocks"] = body.get("blocks", [])
                        msg["edited"] = True
        return web.Response(status=status, text=answer)
