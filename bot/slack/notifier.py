"""Delivers what the workflow owes people: the outbox worker.

The service writes each owed message in the same transaction as the state change; this worker
claims them (a lease per message, so replicas share the work without sending twice), renders them
from the request's current state, and retries Slack's 429/5xx with backoff. A message is marked
delivered only after Slack accepted it, so a restart resumes where the last process stopped.

One delivery can take long (slack_sdk waits out Retry-After twice, each call may take the whole
HTTP timeout), longer than any fixed lease: the worker renews the lease while it delivers, so no
other worker takes a message over while its holder is still at it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from contextvars import ContextVar
from datetime import datetime, timedelta
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.cache.keyed import KeyedCache, cache_key
from bot.logs import bind_request_id
from bot.slack.respond import NoDirectChannel, direct_message, via_response_url
from bot.slack.ui.batch_card import batch_card
from bot.slack.ui.card import approval_card
from bot.slack.ui.messages import (
    approver_reminder,
    escalation_message,
    requester_card_failed,
    requester_confirmation,
    requester_outcome_message,
    welcome_message,
)
from bot.slack.ui.workflow_step import step_outcome_text
from bot.workflow.approvals import ApprovalsRequired
from bot.workflow.clock import utcnow
from bot.workflow.models import (
    OutboxKind,
    OutboxMessage,
    ProvisioningRequest,
    RequestKind,
    SeatCount,
    filed_by_bot,
)
from bot.workflow.ports import NO_METRICS, Metrics, RequestStore, Seats
from bot.workflow.seats import read_seats
from bot.workflow.states import RequestState

log = logging.getLogger(__name__)

# functions.completeSuccess / completeError for a run that has ended: nothing left to complete.
WORKFLOW_GONE = "execution_not_in_running_state"

# Slack errors that a retry will not fix: give the message up and log why.
PERMANENT_ERRORS = frozenset(
    {
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "invalid_blocks",
        "msg_too_long",
        "msg_blocks_too_long",
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "missing_scope",
        "user_not_found",
        "cant_update_message",
        "message_not_found",
        "invalid_arguments",
        "user_disabled",
    }
)


# A message's permalink never changes, and lists (pending, status, the Home tab) ask for many.
PERMALINK_TTL = 24 * 3600.0
# chat.getPermalink calls in flight at once when a list needs several.
PERMALINK_CONCURRENCY = 5


# The approval card's message metadata names its request, so a retry can find a card an earlier
# attempt posted (conversations.history, include_all_metadata) instead of posting another.
CARD_EVENT = "connect_user_bot_card"
# How far back from when the card was owed the approver channel is searched, and for how many
# pages of 200 messages.
CARD_SEARCH_MARGIN = timedelta(minutes=5)
CARD_SEARCH_PAGES = 5


class Retry(Exception):
    """Deliver this message again later."""


class GiveUp(Exception):
    """This message cannot be delivered; stop trying."""


class DeliveryLeaseLost(Exception):
    """Another worker holds this message now (this one stalled past its lease): leave it."""


# The message being delivered, for the checks a handler makes right before posting.
_delivering: ContextVar[OutboxMessage] = ContextVar("delivering")


class SlackNotifier:
    def __init__(
        self,
        *,
        store: RequestStore,
        client: AsyncWebClient,
        approver_channel: str,
        connect_url: str,
        instance_id: str,
        clock: Callable[[], datetime] = utcnow,
        lease_seconds: float = 60.0,
        max_attempts: int = 8,
        concurrency: int = 8,
        poll_seconds: float = 2.0,
        backoff_base: float = 1.0,
        backoff_max: float = 300.0,
        cache: KeyedCache | None = None,
        cache_scope: Callable[[], Awaitable[str | None]] | None = None,
        seats: Seats | None = None,
        escalation_channel: str | None = None,
        approvals_required: ApprovalsRequired | None = None,
        metrics: Metrics = NO_METRICS,
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.approvals_required = approvals_required or ApprovalsRequired()
        self.escalation_channel = escalation_channel
        self.client = client
        self.approver_channel = approver_channel
        self.connect_url = connect_url
        self.instance_id = instance_id
        self.clock = clock
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts
        self.poll_seconds = poll_seconds
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.cache = cache
        # Names the Slack workspace in permalink cache keys (None: unknown now, do not cache), so
        # two deployments sharing one Redis never share entries.
        self.cache_scope = cache_scope
        # Connect's licence seats, shown on a card while it waits (None: never shown).
        self.seats = seats
        self._wake = asyncio.Event()
        self._bot_user: str | None = None
        self._bot_id: str | None = None
        self._concurrency = asyncio.Semaphore(concurrency)
        self._handlers = {
            OutboxKind.POST_CARD: self._post_card,
            OutboxKind.UPDATE_CARD: self._update_card,
            OutboxKind.CONFIRM_REQUESTER: self._confirm_requester,
            OutboxKind.NOTIFY_REQUESTER: self._notify_requester,
            OutboxKind.WELCOME: self._welcome,
            OutboxKind.REMIND_APPROVERS: self._remind_approvers,
            OutboxKind.ESCALATE: self._escalate,
            OutboxKind.COMPLETE_WORKFLOW: self._complete_workflow,
        }

    def wake(self) -> None:
        """Something was written to the outbox: deliver now rather than at the next poll."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                delivered = await self.deliver_due()
            except Exception:
                log.exception("outbox pass failed; trying again shortly")
                delivered = 0
            if delivered:
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                waiter = asyncio.ensure_future(self._wake.wait())
                stopper = asyncio.ensure_future(stop.wait())
                try:
                    await asyncio.wait(
                        {waiter, stopper},
                        timeout=self.poll_seconds,
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                finally:
                    waiter.cancel()
                    stopper.cancel()

    async def deliver_due(self) -> int:
        """Claim and deliver every message whose time has come; returns how many were handled."""
        handled = 0
        while True:
            batch = await self.store.claim_outbox(
                owner=self.instance_id, now=self.clock(), lease_seconds=self.lease_seconds
            )
            if not batch:
                return handled
            # A batch holds at most one message per request (the store hands out a request's
            # messages in order, one at a time), so its messages are independent: deliver them
            # side by side, a bounded number at once, not one Slack round trip after another.
            await asyncio.gather(*(self._deliver_bounded(message) for message in batch))
            handled += len(batch)

    async def _deliver_bounded(self, message: OutboxMessage) -> None:
        async with self._concurrency:
            await self._deliver(message)

    async def _deliver(self, message: OutboxMessage) -> None:
        with bind_request_id(message.request_id):
            await self._deliver_bound(message)

    async def _deliver_bound(self, message: OutboxMessage) -> None:
        _delivering.set(message)
        try:
            request = await self.store.get(message.request_id)
            if request is None:
                raise GiveUp("the request no longer exists")
            await self._while_leased(
                message, self._handlers[message.kind](request, message.payload)
            )
        except DeliveryLeaseLost:
            log.warning(
                "outbox %s (%s) for request %s: its lease was taken over; leaving it",
                message.id,
                message.kind,
                message.request_id,
            )
        except Retry as exc:
            await self._retry_or_give_up(message, str(exc))
        except GiveUp as exc:
            log.error(
                "outbox %s (%s) for request %s given up: %s",
                message.id,
                message.kind,
                message.request_id,
                exc,
            )
            await self._give_up(message, str(exc))
        except SlackApiError as exc:
            error = str(exc.response.get("error") or exc.response.status_code)
            if error in PERMANENT_ERRORS:
                log.error(
                    "outbox %s (%s) for request %s: Slack refused with %s",
                    message.id,
                    message.kind,
                    message.request_id,
                    error,
                )
                await self._give_up(message, error)
            else:
                await self._retry_or_give_up(message, error)
        except Exception as exc:
            log.exception("outbox %s (%s) failed", message.id, message.kind)
            await self._retry_or_give_up(message, type(exc).__name__)
        else:
            await self.store.outbox_delivered(message.id, now=self.clock())

    async def _while_leased(self, message: OutboxMessage, work: Awaitable[None]) -> None:
        """Run one delivery while renewing its lease; stop it if the lease is lost anyway."""
        delivery = asyncio.ensure_future(work)
        lost = False

        async def renew() -> None:
            nonlocal lost
            while True:
                await asyncio.sleep(self.lease_seconds / 3)
                try:
                    held = await self.store.renew_outbox_lease(
                        message.id, owner=self.instance_id, lease_seconds=self.lease_seconds
                    )
                except Exception as exc:  # the database may be back by the next beat
                    log.warning(
                        "renewing outbox %s's lease failed: %s", message.id, type(exc).__name__
                    )
                    continue
                if not held:
                    lost = True
                    delivery.cancel()
                    return

        heartbeat = asyncio.create_task(renew(), name="outbox-heartbeat")
        try:
            await delivery
        except asyncio.CancelledError:
            if lost:
                raise DeliveryLeaseLost from None
            raise
        finally:
            heartbeat.cancel()

    async def _confirm_lease(self) -> None:
        """Right before a post that must not happen twice: is the message still ours?"""
        message = _delivering.get()
        if not await self.store.renew_outbox_lease(
            message.id, owner=self.instance_id, lease_seconds=self.lease_seconds
        ):
            raise DeliveryLeaseLost

    async def _give_up(self, message: OutboxMessage, error: str) -> None:
        await self.store.outbox_give_up(message.id, now=self.clock(), error=error)
        # Counted: a message given up leaves the backlog, so its age never raises an alert.
        self.metrics.outbox_given_up(message.kind.value)

    async def _retry_or_give_up(self, message: OutboxMessage, error: str) -> None:
        if message.attempts >= self.max_attempts:
            log.error(
                "outbox %s (%s) for request %s failed %d times, giving up: %s",
                message.id,
                message.kind,
                message.request_id,
                message.attempts,
                error,
            )
            await self._give_up(message, error)
            return
        delay = min(self.backoff_max, self.backoff_base * 2 ** max(0, message.attempts - 1))
        log.warning(
            "outbox %s (%s) will be retried in %.0fs: %s", message.id, message.kind, delay, error
        )
        await self.store.outbox_retry_later(
            message.id, next_attempt_at=self.clock() + timedelta(seconds=delay), error=error
        )

    # -- the messages --------------------------------------------------------------------------

    async def _post_card(self, request: ProvisioningRequest, payload: dict[str, Any]) -> None:
        # Checked right before posting, on a fresh read: the message must still be ours, and no
        # earlier attempt (one that died before marking it delivered) may have posted the card.
        await self._confirm_lease()
        request = await self.store.get(request.id) or request
        if request.card_ts:
            return
        delivering = _delivering.get()
        if delivering.attempts > 1:
            # An earlier attempt may have posted the card and lost Slack's answer (a timeout, a
            # dropped connection, the database failing right after): look before posting again.
            found = await self._posted_card(request.id, since=delivering.created_at)
            if found is not None:
                log.info("request %s: the card an earlier attempt posted was found", request.id)
                await self._set_card(request, self.approver_channel, found)
                return
        message = await self._card(request)
        response = await self.client.chat_postMessage(
            channel=self.approver_channel,
            unfurl_links=False,
            unfurl_media=False,
            metadata={"event_type": CARD_EVENT, "event_payload": {"request_id": request.id}},
            **message,
        )
        await self._set_card(request, response["channel"], response["ts"])

    async def _set_card(self, request: ProvisioningRequest, channel: str, ts: str) -> None:
        if request.batch_id is not None and request.batch_part is not None:
            # Every request of the part is on this card.
            await self.store.set_batch_card(request.batch_id, request.batch_part, channel, ts)
        else:
            await self.store.set_card(request.id, channel, ts)

    async def _card(self, request: ProvisioningRequest) -> dict[str, Any]:
        """The card as it is now; while it waits, with the licence seats when they can be read.
        A request of a batch holds the card of its part: all of the part's requests."""
        if request.batch_id is not None:
            everyone = await self.store.list_batch(request.batch_id, None)
            members = [m for m in everyone if m.batch_part == request.batch_part] or [request]
            parts = len({m.batch_part for m in everyone}) or 1
            return batch_card(members, parts=parts, approvals=self.approvals_required)
        seats = await self._seats_for(request)
        return approval_card(
            request,
            connect_url=self.connect_url,
            seats=seats,
            approvals=self.approvals_required,
        )

    async def _seats_for(self, request: ProvisioningRequest) -> SeatCount | None:
        """The seats an approver weighs before approving a new account; None when the card
        shows none (decided requests, a key that may not read them, Connect not answering)."""
        if self.seats is None or request.state is not RequestState.PENDING:
            return None
        # A new account takes a seat at first login, an unlock at once; other kinds take none.
        if request.kind not in (RequestKind.NEW_ACCOUNT, RequestKind.UNLOCK):
            return None
        return (await read_seats(self.seats)).seats

    async def _posted_card(self, request_id: str, *, since: datetime | None) -> str | None:
        """The ts of this request's card if the bot already posted it, from the approver
        channel's history (the card carries the request id in its metadata). None when there
        is none, or when the history cannot be read (then the card is posted, at least once)."""
        oldest = (since or self.clock()) - CARD_SEARCH_MARGIN
        cursor: str | None = None
        try:
            bot_user, bot_id = await self._bot_identity()
            if not bot_user:  # without knowing who the bot is, no message can be taken for its own
                return None
            for _ in range(CARD_SEARCH_PAGES):
                page = await self.client.conversations_history(
                    channel=self.approver_channel,
                    oldest=f"{oldest.timestamp():.6f}",
                    include_all_metadata=True,
                    limit=200,
                    cursor=cursor,
                )
                for posted in page.get("messages") or []:
                    metadata = posted.get("metadata") or {}
                    if (
                        posted.get("user") == bot_user
                        and (not bot_id or posted.get("bot_id") == bot_id)
                        and metadata.get("event_type") == CARD_EVENT
                        and (metadata.get("event_payload") or {}).get("request_id") == request_id
                    ):
                        return str(posted["ts"])
                cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
                if not cursor:
                    return None
        except SlackApiError as exc:
            log.warning("could not look for an earlier card: %s", exc.response.get("error"))
        return None

    async def _bot_identity(self) -> tuple[str | None, str | None]:
        """Who the bot is in Slack, its user and bot ids (a card is only ever its own message)."""
        if self._bot_user is None:
            auth = await self.client.auth_test()
            self._bot_user, self._bot_id = auth.get("user_id"), auth.get("bot_id")
        return self._bot_user, self._bot_id

    async def _update_card(self, request: ProvisioningRequest, payload: dict[str, Any]) -> None:
        channel, ts = request.card_channel, request.card_ts
        if not (channel and ts):
            raise GiveUp("the approval card was never posted")
        # Later updates owed to this card were written with state this render will read: one
        # chat.update answers them all (Slack allows about 50 a minute per workspace).
        merged = await self.store.absorb_later(_delivering.get().id, now=self.clock())
        if merged:
            log.info("request %s: %d later card updates merged into this one", request.id, merged)
            # Read again: what the merged updates were written for must be in this render.
            request = await self.store.get(request.id) or request
        message = await self._card(request)
        await self.client.chat_update(channel=channel, ts=ts, **message)

    async def _remind_approvers(
        self, request: ProvisioningRequest, payload: dict[str, Any]
    ) -> None:
        if request.state is not RequestState.PENDING:
            return  # decided between the timer's claim and now: nothing left to remind about
        if not (request.card_channel and request.card_ts):
            raise GiveUp("the approval card was never posted")
        if request.batch_id is not None and not await self._first_waiting(request):
            return  # one reminder per card: the first person still waiting on it gives it
        message = approver_reminder(request, now=self.clock())
        await self.client.chat_postMessage(
            channel=request.card_channel,
            thread_ts=request.card_ts,
            unfurl_links=False,
            unfurl_media=False,
            **message,
        )

    async def _complete_workflow(
        self, request: ProvisioningRequest, payload: dict[str, Any]
    ) -> None:
        """End the Workflow Builder step that filed the request: success with the account when
        there is one, else an error saying why. With the bot's own token: the step's token
        expired long ago. A run that ended meanwhile is a normal outcome, recorded."""
        execution_id = request.workflow_execution_id
        if not execution_id or request.workflow_result is not None:
            return  # nothing to complete, or completed already (an earlier attempt)
        succeeded = request.connect_guid is not None and request.state in (
            RequestState.APPROVED,
            RequestState.ALREADY_EXISTS,
            RequestState.CLOSED,
        )
        try:
            if succeeded:
                await self.client.functions_completeSuccess(
                    function_execution_id=execution_id,
                    outputs={
                        "request_id": request.id,
                        "outcome": request.state.value,
                        "connect_guid": request.connect_guid or "",
                    },
                )
            else:
                await self.client.functions_completeError(
                    function_execution_id=execution_id, error=step_outcome_text(request)
                )
        except SlackApiError as exc:
            if exc.response.get("error") != WORKFLOW_GONE:
                raise
            log.info("request %s: its workflow run had ended before it was decided", request.id)
            await self.store.set_workflow_result(request.id, "gone")
            return
        await self.store.set_workflow_result(request.id, "completed" if succeeded else "failed")

    async def _first_waiting(self, request: ProvisioningRequest) -> bool:
        """Whether `request` is the first of its batch part still pending (in filing order)."""
        assert request.batch_id is not None
        members = await self.store.list_batch(request.batch_id, request.batch_part)
        waiting = [m for m in members if m.state is RequestState.PENDING]
        return not waiting or waiting[0].id == request.id

    async def _escalate(self, request: ProvisioningRequest, payload: dict[str, Any]) -> None:
        if request.state is not RequestState.PENDING:
            return  # decided between the timer's claim and now
        if not self.escalation_channel:
            raise GiveUp("no SLACK_ESCALATION_CHANNEL to escalate to")
        if request.batch_id is not None and not await self._first_waiting(request):
            return  # one announcement per card: the first person still waiting on it makes it
        message = escalation_message(
            request, card_permalink=await self.card_permalink(request), now=self.clock()
        )
        await self._confirm_lease()  # another replica may have taken the message over
        await self.client.chat_postMessage(
            channel=self.escalation_channel, unfurl_links=False, unfurl_media=False, **message
        )

    async def card_permalink(self, request: ProvisioningRequest) -> str | None:
        channel, ts = request.card_channel, request.card_ts
        if not (channel and ts):
            return None

        async def look_up() -> str | None:
            try:
                response = await self.client.chat_getPermalink(channel=channel, message_ts=ts)
            except SlackApiError as exc:
                log.warning("chat.getPermalink failed: %s", exc.response.get("error"))
                return None
            return response.get("permalink")

        scope = await self.cache_scope() if self.cache_scope is not None else ""
        if self.cache is None or scope is None:
            return await look_up()
        # A failed look-up (None) is not kept: the caches treat None as a miss.
        return await self.cache.get_or_compute(
            "permalink:" + cache_key(scope, channel, ts), look_up, ttl=PERMALINK_TTL
        )

    async def card_permalinks(
        self, requests: Iterable[ProvisioningRequest]
    ) -> dict[str, str | None]:
        """Permalinks of several cards by request id, a few look-ups at a time."""
        gate = asyncio.Semaphore(PERMALINK_CONCURRENCY)

        async def one(request: ProvisioningRequest) -> tuple[str, str | None]:
            async with gate:
                return request.id, await self.card_permalink(request)

        return dict(await asyncio.gather(*(one(request) for request in requests)))

    async def _confirm_requester(
        self, request: ProvisioningRequest, payload: dict[str, Any]
    ) -> None:
        if filed_by_bot(request.requester_id):
            return
        if request.card_ts:
            message = requester_confirmation(
                request, card_permalink=await self.card_permalink(request)
            )
        else:  # posting the card was given up: the requester must not think approvers know
            message = requester_card_failed(request)
        if await via_response_url(
            payload.get("response_url"), message, replace=True, session=self.client.session
        ):
            return
        # The response_url expired or was refused: a DM carries the confirmation instead.
        await self._direct_message(request.requester_id, message)

    async def _notify_requester(
        self, request: ProvisioningRequest, payload: dict[str, Any]
    ) -> None:
        if filed_by_bot(request.requester_id):
            return  # the bot filed it (a deactivation): nobody asked, the card says it all
        message = requester_outcome_message(request, connect_url=self.connect_url)
        await self._direct_message(request.requester_id, message)

    async def _welcome(self, request: ProvisioningRequest, payload: dict[str, Any]) -> None:
        if request.subject_id:  # matched to their Slack account at filing
            await self._direct_message(request.subject_id, self._welcome_message(request))
            return
        if not request.email:
            return
        try:
            found = await self.client.users_lookupByEmail(email=request.email)
        except SlackApiError as exc:
            if exc.response.get("error") in ("users_not_found", "user_not_found"):
                return  # not in this workspace: nobody to welcome
            raise
        user = found.get("user") or {}
        if not user.get("id") or user.get("deleted") or user.get("is_bot"):
            return
        await self._direct_message(user["id"], self._welcome_message(request))

    def _welcome_message(self, request: ProvisioningRequest) -> dict[str, Any]:
        return welcome_message(
            connect_url=self.connect_url,
            username=request.username,
            role=request.role_granted,
            role_change=request.kind is RequestKind.ROLE_CHANGE,
        )

    async def _direct_message(self, user_id: str, message: dict[str, Any]) -> None:
        try:
            await direct_message(self.client, user_id, message, unfurl=False)
        except NoDirectChannel:
            raise Retry("conversations.open returned no channel") from None
