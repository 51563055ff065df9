"""The composition root: every part of the bot, built from settings and wired together.

Nothing here runs at import time; `build_runtime` does no I/O, `Runtime.start` checks the approver
channel, migrates the store and starts the background loops, `Runtime.stop` lets in-flight work
finish before closing. Only the entry points (`bot.app`, `bot.cli`, `bot.asgi`) import this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import logging
import secrets
import socket
from dataclasses import dataclass, field

import aiohttp
from slack_bolt.async_app import AsyncApp
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.cache.backend import build_backend
from bot.cache.directory import CachedDirectory
from bot.cache.keyed import KeyedCache
from bot.cache.seats import CachedSeats
from bot.connect.capabilities import describe as describe_capabilities
from bot.connect.client import ConnectClient
from bot.connect.directory import ConnectDirectory
from bot.connect.groups import ConnectGroups
from bot.connect.seats import ConnectSeats
from bot.connect.transport import AiohttpTransport
from bot.metrics import PrometheusMetrics
from bot.settings import Settings
from bot.slack.call_metrics import count_calls
from bot.slack.home import HomeTab
from bot.slack.listeners import register_listeners
from bot.slack.listeners.deps import ListenerDeps
from bot.slack.notifier import SlackNotifier
from bot.slack.people import ApproverChannelRefused, SlackPeople
from bot.store.database import create_engine
from bot.store.migrate import upgrade
from bot.store.sql_store import SqlRequestStore
from bot.tasks import TaskSupervisor
from bot.web.deps import WebDeps
from bot.workflow.approvals import ApprovalsRequired
from bot.workflow.batches import Batches
from bot.workflow.clock import Clock, utcnow
from bot.workflow.offboarding import Deactivations
from bot.workflow.ports import NO_METRICS, DirectoryError, Metrics
from bot.workflow.provisioning import Provisioner, settle_schedule
from bot.workflow.requests import Requests
from bot.workflow.seats import SeatReport
from bot.workflow.timers import Timers
from bot.workflow.workflow_runs import WorkflowRuns

log = logging.getLogger(__name__)

RECOVERY_INTERVAL_SECONDS = 15.0
SLACK_HTTP_TIMEOUT_SECONDS = 15
TIMERS_INTERVAL_SECONDS = 60.0


def new_instance_id() -> str:
    """Names this process in leases, so replicas can tell whose work is whose."""
    return f"{socket.gethostname()}:{secrets.token_hex(4)}"


@dataclass
class Runtime:
    settings: Settings
    instance_id: str
    engine: AsyncEngine
    store: SqlRequestStore
    connect: ConnectClient
    cache: KeyedCache
    slack_client: AsyncWebClient
    people: SlackPeople
    notifier: SlackNotifier
    requests: Requests
    provisioner: Provisioner
    timers: Timers
    supervisor: TaskSupervisor
    bolt: AsyncApp
    # What GET /metrics serves; None when METRICS_ENABLED is off (the route does not exist).
    metrics: PrometheusMetrics | None = None
    recovery_interval: float = RECOVERY_INTERVAL_SECONDS
    timers_interval: float = TIMERS_INTERVAL_SECONDS
    # Why `start` refused to start, in plain words (no traceback), for the server to report.
    start_refusal: str | None = None
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _loops: list[asyncio.Task[None]] = field(default_factory=list)
    _started: bool = False

    async def start(self, *, migrate: bool = True) -> None:
        try:
            await self.people.check_approver_channel()
        except ApproverChannelRefused as exc:
            self.start_refusal = str(exc)
            await self.connect.aclose()
            await self.cache.close()
            await self.engine.dispose()
            raise
        if migrate:
            await upgrade(self.engine)
        await self._read_capabilities()
        self._stop.clear()
        # One connection pool for every Slack call (Web API and response_urls): slack_sdk opens
        # a session, and a TCP connection, per call otherwise.
        self.slack_client.session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=SLACK_HTTP_TIMEOUT_SECONDS)
        )
        self._loops = [
            asyncio.create_task(self.notifier.run(self._stop), name="outbox"),
            asyncio.create_task(self._recovery_loop(), name="lease-recovery"),
            asyncio.create_task(self._timers_loop(), name="request-timers"),
        ]
        # What start-up allocated lives as long as the process: keeping it out of the cyclic
        # collector shortens full collections from ~50 ms to a few (bench/results.md, ack p99).
        gc.collect()
        gc.freeze()
        self._started = True
        if self.metrics is not None and self.settings.metrics_token is None:
            log.warning("GET /metrics answers anyone: set METRICS_TOKEN unless only you reach it")
        log.info("bot started as %s", self.instance_id)

    async def _read_capabilities(self) -> None:
        """What Connect's login provider allows, read once and said in the log; if Connect
        cannot say now, the first search asks again (decisions never guess from a name)."""
        try:
            caps = await asyncio.wait_for(
                self.requests.directory.capabilities(), self.settings.connect_timeout
            )
        except (DirectoryError, TimeoutError) as exc:
            log.warning("could not read Connect's server settings at start: %s", exc)
            return
        log.info("Connect's login provider: %s", describe_capabilities(caps))

    async def _recovery_loop(self) -> None:
        while not self._stop.is_set():
            try:
                await self.provisioner.recover_expired_leases()
            except Exception:
                log.exception("lease recovery pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.recovery_interval)

    async def _timers_loop(self) -> None:
        # Expiry and reminders are due times stored with each request: every replica looks,
        # and the store's conditional updates let only one act on each.
        while not self._stop.is_set():
            try:
                await self.timers.run()
            except Exception:
                log.exception("request timers pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.timers_interval)

    async def stop(self) -> None:
        """Finish in-flight work, then close everything. Also after a `start` that was
        cancelled (a signal during start-up): there is then no work, only what was opened."""
        if self._started:
            await self._finish_work()
            self._started = False
        await self.connect.aclose()
        if self.slack_client.session is not None:
            await self.slack_client.session.close()
            self.slack_client.session = None
        await self.cache.close()
        await self.engine.dispose()
        log.info("bot stopped")

    async def _finish_work(self) -> None:
        grace = self.settings.shutdown_grace_seconds
        cancelled = await self.supervisor.drain(grace)
        if cancelled:
            log.warning("%d task(s) did not finish within %.0fs", cancelled, grace)
        self._stop.set()
        # One last delivery pass, so what the finished work owes people goes out before exit.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.notifier.deliver_due(), timeout=min(grace, 5) or 1)
        for loop in self._loops:
            loop.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        self._loops = []

    def web_deps(self) -> WebDeps:
        """What the web routes need, and nothing else of the runtime."""
        return WebDeps(
            settings=self.settings,
            bolt=self.bolt,
            store=self.store,
            engine=self.engine,
            connect=self.connect,
            clock=self.requests.clock,
            metrics=self.metrics,
        )


def search_scope(connect_server: str, api_key: str) -> str:
    """The server and a one-way fingerprint of the key: the key itself never reaches a cache."""
    fingerprint = hashlib.sha256(
        b"connect-user-bot search scope\x00" + api_key.encode()
    ).hexdigest()
    return f"{connect_server}#{fingerprint[:16]}"


def build_slack_client(settings: Settings, metrics: Metrics = NO_METRICS) -> AsyncWebClient:
    client = AsyncWebClient(
        token=settings.slack_bot_token.get_secret_value(),
        base_url=settings.slack_api_url,
        timeout=SLACK_HTTP_TIMEOUT_SECONDS,
    )
    # Honour 429 Retry-After on interactive calls (views.open, conversations.members…).
    client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=2))
    if metrics is not NO_METRICS:
        count_calls(client, metrics)
    return client


def build_runtime(
    settings: Settings,
    *,
    instance_id: str | None = None,
    clock: Clock = utcnow,
    socket_mode: bool = False,
) -> Runtime:
    instance_id = instance_id or new_instance_id()
    engine = create_engine(settings.database_url)
    store = SqlRequestStore(engine)
    # A registry of this runtime's own: each replica (and each app in a test) serves its own.
    prometheus = (
        PrometheusMetrics(outbox_backlog=store.outbox_backlog, clock=clock)
        if settings.metrics_enabled
        else None
    )
    metrics: Metrics = prometheus if prometheus is not None else NO_METRICS
    connect = ConnectClient(
        settings.connect_server,
        settings.connect_api_key.get_secret_value(),
        timeout=settings.connect_timeout,
        transport=AiohttpTransport(max_connections=50),
        metrics=metrics,
    )
    redis_url = settings.redis_url.get_secret_value() if settings.redis_url else None
    cache = KeyedCache(
        build_backend(
            redis_url,
            namespace=settings.cache_namespace,
            max_entries=settings.cache_max_entries,
        ),
        metrics=metrics,
    )
    slack_client = build_slack_client(settings, metrics)
    # No cache argument: who may decide is answered in this process only, never from Redis.
    people = SlackPeople(
        slack_client,
        approver_channel=settings.slack_approver_channel,
        approver_usergroup=settings.slack_approver_usergroup,
        admin_approver_usergroup=settings.slack_admin_approver_usergroup,
        search_channel=settings.slack_search_channel,
        allow_guests=settings.allow_guests,
        allow_public_approver_channel=settings.approver_channel_allow_public,
        approver_max_age=settings.approver_check_max_age_seconds,
        membership_ttl=settings.membership_cache_ttl,
    )
    # Licence seats for the approvers (the card, /connect-user seats): shared between replicas
    # briefly; read only when the key is an administrator's (the adapter checks).
    connect_seats = ConnectSeats(connect, timeout=settings.connect_timeout)
    seats = CachedSeats(
        connect_seats,
        cache,
        scope=search_scope(settings.connect_server, settings.connect_api_key.get_secret_value()),
    )
    approvals_required = ApprovalsRequired(settings.approvals_required)
    notifier = SlackNotifier(
        store=store,
        client=slack_client,
        approver_channel=settings.slack_approver_channel,
        connect_url=settings.connect_server,
        instance_id=instance_id,
        clock=clock,
        cache=cache,
        cache_scope=people.slack_identity,
        seats=seats,
        escalation_channel=settings.slack_escalation_channel,
        approvals_required=approvals_required,
        metrics=metrics,
    )
    directory = CachedDirectory(
        ConnectDirectory(connect, key_role_from=connect_seats.key_role),
        cache,
        ttl=settings.search_cache_ttl,
        # Names the directory the results come from and the key that read them (what a search
        # shows depends on the key: emails are hidden from non-administrators when Connect says
        # so), so two deployments sharing one Redis never show each other's results.
        scope=search_scope(settings.connect_server, settings.connect_api_key.get_secret_value()),
    )
    # Groups are never cached: searches are rare, and filing reads them again anyway.
    groups = ConnectGroups(connect)
    provisioner = Provisioner(
        store=store,
        directory=directory,
        groups=groups,
        instance_id=instance_id,
        lease_seconds=settings.lease_seconds,
        settle_delays=settle_schedule(settings.connect_timeout),
        clock=clock,
        on_outbox=notifier.wake,
        metrics=metrics,
    )
    requests = Requests(
        store=store,
        directory=directory,
        groups=groups,
        approvers=people,
        provisioner=provisioner,
        people=people,
        search_limit=settings.search_limit,
        requestable_roles=settings.requestable_roles,
        approvals_required=approvals_required,
        clock=clock,
        on_outbox=notifier.wake,
        metrics=metrics,
    )
    timers = Timers(
        store=store,
        request_expiry_hours=settings.request_expiry_hours,
        reminder_after_hours=settings.reminder_after_hours,
        escalate_after_hours=settings.escalate_after_hours,
        clock=clock,
        on_outbox=notifier.wake,
        metrics=metrics,
    )
    supervisor = TaskSupervisor()
    signing_secret = (
        settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else ""
    )
    # Token and secret given explicitly, so Bolt never reads the environment by itself.
    bolt = AsyncApp(
        client=slack_client,
        signing_secret=signing_secret,
        request_verification_enabled=not socket_mode,
        process_before_response=False,
        # A Workflow Builder step's token lasts minutes; its request is decided much later, and
        # completed with the bot's own token (never keep or use the event's).
        attaching_function_token_enabled=False,
        name="connect-user-bot",
        # Bolt copies the root logger's level onto its own loggers, and at DEBUG it logs response
        # bodies; basing them on "slack_bolt" keeps the floor that bot.logs sets for it.
        logger=logging.getLogger("slack_bolt"),
    )
    register_listeners(
        bolt,
        ListenerDeps(
            requests=requests,
            batches=Batches(requests),
            workflow_runs=WorkflowRuns(requests),
            people=people,
            notifier=notifier,
            home=HomeTab(
                requests=requests, client=slack_client, card_links=notifier.card_permalinks
            ),
            seat_report=SeatReport(
                seats=seats,
                approvers=people,
                inactive_after_days=settings.inactive_after_days,
                clock=clock,
            ),
            supervisor=supervisor,
            approver_channel=settings.slack_approver_channel,
            connect_url=settings.connect_server,
            deactivations=Deactivations(
                store=store,
                directory=directory,
                clock=clock,
                on_outbox=notifier.wake,
                metrics=metrics,
            ),
        ),
    )
    return Runtime(
        settings=settings,
        instance_id=instance_id,
        engine=engine,
        store=store,
        connect=connect,
        cache=cache,
        slack_client=slack_client,
        people=people,
        notifier=notifier,
        requests=requests,
        provisioner=provisioner,
        timers=timers,
        supervisor=supervisor,
        bolt=bolt,
        metrics=prometheus,
        recovery_interval=settings.recovery_interval_seconds,
        timers_interval=settings.timers_interval_seconds,
    )
