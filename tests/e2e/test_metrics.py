"""`GET /metrics` through the real HTTP server: its token rule, and its numbers moving with what
people do through signed requests against the fake Slack and fake Connect, read back with
prometheus_client's own parser. Labels never carry anyone's data."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import uvicorn
from prometheus_client.parser import text_string_to_metric_families

from bot.asgi import LazyApp
from bot.cli import run_socket_mode
from bot.slack.ui import ids
from bot.workflow.states import RequestState
from tests.support.bot_under_test import (
    APPROVER,
    REQUESTER,
    BotUnderTest,
    free_socket,
    make_settings,
    start_bot,
)
from tests.support.entrypoints import lifespan_startup, set_bot_environment
from tests.support.fake_connect import FakeConnect
from tests.support.fake_slack import FakeSlack
from tests.support.flows import (
    approve,
    command,
    file_request,
    open_request_form,
    request_button,
    submit_request,
)
from tests.support.slack_requests import event_callback_body

TOKEN = "metrics-scrape-token-0123456789"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
P = "connect_user_bot"

Samples = list[tuple[str, dict[str, str], float]]


async def start_metrics_bot(
    fake_slack: FakeSlack,
    fake_connect: FakeConnect,
    database_url: str,
    *,
    clock: Callable[[], datetime] | None = None,
    **overrides: Any,
) -> BotUnderTest:
    values: dict[str, Any] = {"metrics_enabled": True, "metrics_token": TOKEN}
    values.update(overrides)
    settings = make_settings(fake_slack, fake_connect, database_url, **values)
    return await start_bot(settings, fake_slack, fake_connect, clock=clock)


@pytest.fixture
async def metrics_bot(fake_slack, fake_connect, database_url) -> AsyncIterator[BotUnderTest]:
    # Searches cached, so that a repeated search is a cache hit.
    bot = await start_metrics_bot(fake_slack, fake_connect, database_url, search_cache_ttl=30)
    try:
        yield bot
    finally:
        await bot.stop()


async def scrape(bot: BotUnderTest, headers: dict[str, str] = BEARER) -> Samples:
    response = await bot.http.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return [
        (sample.name, dict(sample.labels), sample.value)
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    ]


async def scraped_until(
    bot: BotUnderTest, condition: Callable[[Samples], bool], timeout: float = 5.0
) -> Samples:
    """Scrape until `condition` holds (work the background loops do lands a moment later)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        samples = await scrape(bot)
        if condition(samples):
            return samples
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("the metrics never showed it")
        await asyncio.sleep(0.02)


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples named `name` whose labels include `labels` (0 when none)."""
    return sum(
        v
        for n, sample_labels, v in samples
        if n == name and all(sample_labels.get(k) == want for k, want in labels.items())
    )


def label_values(samples: Samples) -> set[str]:
    return {v for _, labels, _ in samples for v in labels.values()}


# -- the token rule -----------------------------------------------------------------------------


async def test_metrics_need_the_token(metrics_bot: BotUnderTest) -> None:
    get = metrics_bot.http.get
    assert (await get("/metrics")).status_code == 401
    assert (await get("/metrics", headers={"Authorization": "Bearer wrong"})).status_code == 401
    assert (await get("/metrics", headers={"Authorization": TOKEN})).status_code == 401
    assert (await get("/metrics", headers={"X-Metrics-Token": "wrong"})).status_code == 401
    refused = await get("/metrics", headers={"Authorization": "Bearer wrong"})
    assert TOKEN not in refused.text and "wrong" not in refused.text

    assert (await get("/metrics", headers=BEARER)).status_code == 200
    # Behind Posit Connect, Authorization carries the scraper's Connect API key.
    behind_connect = {"Authorization": "Key connect-api-key", "X-Metrics-Token": TOKEN}
    assert (await get("/metrics", headers=behind_connect)).status_code == 200
    # One right token is enough, whichever header holds it.
    mixed = {"Authorization": "Bearer wrong", "X-Metrics-Token": TOKEN}
    assert (await get("/metrics", headers=mixed)).status_code == 200


async def test_metrics_are_off_unless_enabled(bot: BotUnderTest) -> None:
    assert (await bot.http.get("/metrics", headers=BEARER)).status_code == 404
    assert (await bot.http.get("/metrics")).status_code == 404


async def test_without_a_token_metrics_are_open_with_a_warning(
    fake_slack, fake_connect, database_url, caplog
) -> None:
    bot = await start_metrics_bot(fake_slack, fake_connect, database_url, metrics_token=None)
    try:
        samples = await scrape(bot, headers={})
        assert value(samples, f"{P}_outbox_messages") == 0
        assert "GET /metrics answers anyone" in caplog.text
    finally:
        await bot.stop()


# -- the numbers move with what people do -------------------------------------------------------


async def test_filing_and_approving_moves_the_counters(metrics_bot: BotUnderTest) -> None:
    bot = metrics_bot
    before = await scrape(bot)
    assert value(before, f"{P}_requests_filed_total") == 0

    request_id = await file_request(bot, "julie2", role="publisher")
    filed = await scrape(bot)
    assert value(filed, f"{P}_requests_filed_total", kind="new_account") == 1
    assert value(filed, f"{P}_requests_decided_total") == 0

    await approve(bot, request_id, APPROVER)
    await bot.settle()
    after = await scrape(bot)
    decided = {"kind": "new_account", "outcome": "approved"}
    assert value(after, f"{P}_requests_decided_total", **decided) == 1
    assert value(after, f"{P}_request_decision_seconds_count", **decided) == 1
    assert value(after, f"{P}_requests_finished_total", **decided) == 1
    # Connect's calls, each under its template: the create, then the role set on the new account.
    created = {"method": "PUT", "endpoint": "/v1/users", "outcome": "200"}
    assert value(after, f"{P}_connect_requests_total", **created) == 1
    role_set = {"method": "PUT", "endpoint": "/v1/users/{guid}", "outcome": "200"}
    assert value(after, f"{P}_connect_requests_total", **role_set) == 1
    assert value(after, f"{P}_connect_request_seconds_count", method="PUT") == 2
    searches = value(after, f"{P}_connect_requests_total", endpoint="/v1/users/remote")
    assert searches >= 1
    # Everything owed was delivered.
    assert value(after, f"{P}_outbox_messages") == 0
    assert value(after, f"{P}_outbox_oldest_age_seconds") == 0

    guid = bot.connect.get_local_user("julie2")["guid"]
    labels = label_values(after)
    assert not any(guid in label or "julie" in label for label in labels)
    assert not any(request_id in label for label in labels)


async def test_denials_and_expiries_are_counted_with_their_waiting_time(
    fake_slack, fake_connect, database_url
) -> None:
    now = [datetime.now(UTC)]
    fake_connect.add_directory_user("bob1", "Bob", "Builder", "bob1@example.com")
    bot = await start_metrics_bot(fake_slack, fake_connect, database_url, clock=lambda: now[0])
    try:
        denied_id = await file_request(bot, "julie2")
        await file_request(bot, "bob1")
        now[0] += timedelta(hours=2)
        opened = fake_slack.count("views.open")
        await bot.click(ids.ACTION_DENY, denied_id, user_id=APPROVER)
        view = (await fake_slack.wait_for("views.open", count=opened + 1))[-1].args["view"]
        await bot.submit(
            ids.VIEW_DENY_REASON,
            {ids.DENY_REASON_BLOCK: {ids.DENY_REASON_INPUT: "Use the shared account."}},
            view["private_metadata"],
            user_id=APPROVER,
        )
        await bot.settle()
        now[0] += timedelta(days=8)  # past REQUEST_EXPIRY_HOURS (a week)
        await bot.runtime.timers.run()
        await bot.settle()

        samples = await scrape(bot)
        decided, seconds = f"{P}_requests_decided_total", f"{P}_request_decision_seconds"
        denied = {"kind": "new_account", "outcome": "denied"}
        expired = {"kind": "new_account", "outcome": "expired"}
        assert value(samples, decided, **denied) == 1
        assert value(samples, decided, **expired) == 1
        assert value(samples, f"{seconds}_sum", **denied) == pytest.approx(2 * 3600)
        assert value(samples, f"{seconds}_sum", **expired) == pytest.approx((8 * 24 + 2) * 3600)
        # A week and more falls in the histogram's last finite bucket, not below it.
        assert value(samples, f"{seconds}_bucket", le="604800.0", **expired) == 0
        assert value(samples, f"{seconds}_bucket", le="2.592e+06", **expired) == 1
    finally:
        await bot.stop()


async def test_lock_requests_the_bot_files_and_closes_itself_are_counted(
    fake_slack, fake_connect, database_url
) -> None:
    """Slack deactivates Ana: the bot files a lock request of its own; she is reactivated an
    hour later, before anyone decided: the request is cancelled. Both count like a person's."""
    now = [datetime.now(UTC)]
    fake_connect.add_local_user("alima", "Ana", "Lima", "ana.lima@example.com")
    bot = await start_metrics_bot(fake_slack, fake_connect, database_url, clock=lambda: now[0])

    async def user_change(deleted: bool) -> None:
        user = fake_slack.add_user(
            "UANALIMA1", deleted=deleted, email="ana.lima@example.com", real_name="Ana Lima"
        )
        response = await bot.post(event_callback_body({"type": "user_change", "user": user}))
        assert response.status_code == 200
        await bot.settle()

    try:
        await user_change(deleted=True)
        filed = await scrape(bot)
        assert value(filed, f"{P}_requests_filed_total", kind="lock") == 1
        assert value(filed, f"{P}_requests_decided_total") == 0

        now[0] += timedelta(hours=1)
        await user_change(deleted=False)
        samples = await scrape(bot)
        cancelled = {"kind": "lock", "outcome": "cancelled"}
        assert value(samples, f"{P}_requests_decided_total", **cancelled) == 1
        assert value(samples, f"{P}_request_decision_seconds_count", **cancelled) == 1
        assert value(samples, f"{P}_request_decision_seconds_sum", **cancelled) == pytest.approx(
            3600
        )
        assert value(samples, f"{P}_requests_filed_total") == 1
    finally:
        await bot.stop()


async def test_messages_given_up_are_counted_by_kind(metrics_bot: BotUnderTest) -> None:
    """A message given up leaves the outbox's backlog, so its age never shows it: the counter
    does, from a permanent refusal at once and from a message that failed every attempt."""
    bot = metrics_bot
    given_up = f"{P}_outbox_given_up_total"
    before = await scrape(bot)
    assert value(before, given_up, kind="post_card") == 0  # there at 0, for increase()
    assert value(before, given_up) == 0

    view, _ = await open_request_form(bot, "julie2")
    bot.slack.fail("chat.postMessage", error="channel_not_found")  # permanent: given up at once
    await submit_request(bot, view, "Needs to publish the quarterly report.")
    await bot.settle()
    samples = await scrape(bot)
    assert value(samples, given_up, kind="post_card") == 1
    assert value(samples, given_up) == 1
    assert value(samples, f"{P}_outbox_messages") == 0

    # An error worth retrying, on the last attempt the notifier allows.
    bot.runtime.notifier.max_attempts = 1
    bot.connect.add_directory_user("bob1", "Bob", "Builder", "bob1@example.com")
    view, _ = await open_request_form(bot, "bob1")
    bot.slack.fail("chat.postMessage", error="fatal_error")
    await submit_request(bot, view, "Needs to publish the quarterly report.")
    await bot.settle()
    samples = await scrape(bot)
    assert value(samples, given_up, kind="post_card") == 2
    assert value(samples, given_up) == 2


async def test_a_recovered_lease_is_counted(metrics_bot: BotUnderTest) -> None:
    bot = metrics_bot
    request_id = await file_request(bot)
    # A process claimed the request and died right after its PUT went through.
    now = datetime.now(UTC)
    claimed = await bot.runtime.store.transition(
        request_id,
        from_states={RequestState.PENDING},
        to_state=RequestState.PROVISIONING,
        now=now,
        changes={
            "decided_by": APPROVER,
            "decided_at": now,
            "lease_owner": "dead:1",
            "lease_expires_at": now - timedelta(seconds=1),
            "put_sent_at": now - timedelta(seconds=30),
        },
    )
    assert claimed is not None
    bot.connect.add_local_user("julie2", "Julie", "Jolly", "julie2@example.com")
    assert value(await scrape(bot), f"{P}_leases_recovered_total") == 0
    assert len(await bot.runtime.provisioner.recover_expired_leases()) == 1
    await bot.settle()
    samples = await scrape(bot)
    assert value(samples, f"{P}_leases_recovered_total") == 1
    assert (
        value(samples, f"{P}_requests_finished_total", outcome="already_exists")
        + value(samples, f"{P}_requests_finished_total", outcome="approved")
        == 1
    )


async def test_connect_refusals_are_counted_with_status_and_code(
    metrics_bot: BotUnderTest,
) -> None:
    bot = metrics_bot
    request_id = await file_request(bot, "julie2", role="publisher")
    bot.connect.fail_next("PUT v1/users/*", 403, code=23, times=5)  # the role cannot be set
    await approve(bot, request_id, APPROVER)
    await bot.settle()
    samples = await scrape(bot)
    refused = {"method": "PUT", "endpoint": "/v1/users/{guid}", "outcome": "403", "code": "23"}
    assert value(samples, f"{P}_connect_requests_total", **refused) == 1
    assert value(samples, f"{P}_connect_requests_total", method="PUT", outcome="200") == 1
    incomplete = {"kind": "new_account", "outcome": "incomplete"}
    assert value(samples, f"{P}_requests_finished_total", **incomplete) == 1


async def test_slack_errors_and_rate_limits_are_counted_by_method(
    metrics_bot: BotUnderTest,
) -> None:
    bot = metrics_bot
    value_ = await request_button(bot, "julie2")
    bot.slack.fail("views.open", error="expired_trigger_id")
    await bot.click(ids.ACTION_REQUEST_ACCOUNT, value_, user_id=REQUESTER, ephemeral=True)
    await bot.settle()
    errors = f"{P}_slack_api_errors_total"
    expired = {"method": "views.open", "error": "expired_trigger_id"}
    # The form is opened after ack(), outside the work settle() waits for.
    samples = await scraped_until(bot, lambda s: value(s, errors, **expired) >= 1)
    assert value(samples, errors, **expired) == 1
    assert value(samples, errors, method="chat.postMessage") == 0

    # A 429 that slack_sdk then waits out and retries: counted, and the card still goes out.
    bot.slack.fail("chat.postMessage", status=429, retry_after=0)
    await file_request(bot, "julie2")
    samples = await scrape(bot)
    assert value(samples, f"{P}_slack_api_rate_limited_total", method="chat.postMessage") == 1
    assert value(samples, errors, method="chat.postMessage", error="ratelimited") == 1


async def test_cache_hits_and_misses_are_counted(metrics_bot: BotUnderTest) -> None:
    bot = metrics_bot
    await command(bot, "search julie", REQUESTER)
    first = await scrape(bot)
    assert value(first, f"{P}_cache_lookups_total", cache="search", result="miss") == 1
    assert value(first, f"{P}_cache_lookups_total", cache="search", result="hit") == 0
    remote = value(first, f"{P}_connect_requests_total", endpoint="/v1/users/remote")

    await command(bot, "search julie", REQUESTER)
    second = await scrape(bot)
    assert value(second, f"{P}_cache_lookups_total", cache="search", result="hit") == 1
    assert value(second, f"{P}_cache_lookups_total", cache="search", result="miss") == 1
    # The hit asked Connect nothing.
    assert value(second, f"{P}_connect_requests_total", endpoint="/v1/users/remote") == remote
    assert not any("julie" in label for label in label_values(second))


async def test_outbox_depth_and_age_are_read_when_scraped(
    fake_slack, fake_connect, database_url
) -> None:
    now = [datetime(2026, 3, 2, 9, 0, tzinfo=UTC)]
    bot = await start_metrics_bot(fake_slack, fake_connect, database_url, clock=lambda: now[0])
    try:
        # Slack keeps failing the card: the message waits in the outbox for a retry.
        fake_slack.fail("chat.postMessage", status=500, times=None)
        view_value = await request_button(bot, "julie2")
        await bot.click(ids.ACTION_REQUEST_ACCOUNT, view_value, user_id=REQUESTER, ephemeral=True)
        view = (await fake_slack.wait_for("views.open"))[-1].args["view"]
        await bot.submit(
            ids.VIEW_JUSTIFICATION,
            {ids.JUSTIFICATION_BLOCK: {ids.JUSTIFICATION_INPUT: "Needs to publish."}},
            view["private_metadata"],
            user_id=REQUESTER,
        )
        await bot.runtime.supervisor.join()
        failed = {"method": "chat.postMessage", "error": "internal_error"}
        # Tried by the outbox worker, and refused.
        await scraped_until(bot, lambda s: value(s, f"{P}_slack_api_errors_total", **failed) >= 1)
        now[0] += timedelta(minutes=7)
        samples = await scrape(bot)
        assert value(samples, f"{P}_outbox_messages") >= 1
        assert value(samples, f"{P}_outbox_oldest_age_seconds") == pytest.approx(420)
    finally:
        fake_slack.clear_faults()
        await bot.stop()


async def test_two_apps_in_one_process_keep_their_own_numbers(
    metrics_bot: BotUnderTest, fake_slack, fake_connect, tmp_path
) -> None:
    settings = make_settings(
        fake_slack,
        fake_connect,
        f"sqlite:///{tmp_path / 'other.db'}",
        metrics_enabled=True,
        metrics_token=TOKEN,
    )
    other = await start_bot(settings, fake_slack, fake_connect, instance_id="test-2")
    try:
        await file_request(metrics_bot, "julie2")
        assert value(await scrape(metrics_bot), f"{P}_requests_filed_total") == 1
        assert value(await scrape(other), f"{P}_requests_filed_total") == 0
    finally:
        await other.stop()


async def test_no_label_holds_a_guid_a_username_or_an_id(metrics_bot: BotUnderTest) -> None:
    bot = metrics_bot
    request_id = await file_request(bot, "julie2")
    await approve(bot, request_id, APPROVER)
    await bot.settle()
    await bot.http.get("/requests")  # the visitor pages look people up too
    labels = label_values(await scrape(bot))
    assert labels, "the scrape has labelled samples"
    guid_shape = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-", re.IGNORECASE)
    people = {"julie", REQUESTER, APPROVER, request_id, "example.com", "@"}
    for label in labels:
        assert not guid_shape.search(label), label
        assert not any(who.lower() in label.lower() for who in people), label


async def test_scrape_is_plain_prometheus_text(metrics_bot: BotUnderTest) -> None:
    response = await metrics_bot.http.get("/metrics", headers=BEARER)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    families = {family.name for family in text_string_to_metric_families(response.text)}
    for name in (
        "requests_filed",
        "requests_decided",
        "request_decision_seconds",
        "connect_requests",
        "connect_request_seconds",
        "slack_api_errors",
        "slack_api_rate_limited",
        "outbox_messages",
        "outbox_oldest_age_seconds",
        "leases_recovered",
        "cache_lookups",
    ):
        assert f"{P}_{name}" in families, name


async def test_socket_mode_says_it_serves_no_metrics(
    fake_slack, fake_connect, database_url, caplog
) -> None:
    settings = make_settings(
        fake_slack,
        fake_connect,
        database_url,
        slack_signing_secret=None,
        slack_app_token="xapp-test-app-token-0000",
        metrics_enabled=True,
    )
    stop = asyncio.Event()
    running = asyncio.create_task(run_socket_mode(settings, stop, instance_id="socket-1"))
    try:
        for _ in range(500):
            if fake_slack.socket_connections:
                break
            assert not running.done(), running.exception()
            await asyncio.sleep(0.01)
        assert fake_slack.socket_connections == 1
        assert "METRICS_ENABLED is ignored in Socket Mode" in caplog.text
    finally:
        stop.set()
        await asyncio.wait_for(running, 15)


async def test_hosted_on_connect_metrics_need_a_token(
    clean_environment, monkeypatch, fake_slack: FakeSlack, fake_connect: FakeConnect, tmp_path
) -> None:
    """Hosted, the content is open to anyone (Slack must reach it): metrics without a token
    would be too, so the app refuses to start and names the variable."""
    set_bot_environment(monkeypatch, fake_slack, fake_connect, f"sqlite:///{tmp_path / 'h.db'}")
    monkeypatch.setenv("METRICS_ENABLED", "true")
    monkeypatch.delenv("METRICS_TOKEN", raising=False)
    app = LazyApp()
    answer = await lifespan_startup(app)
    assert answer["type"] == "lifespan.startup.failed"
    assert "METRICS_TOKEN is not set" in answer["message"]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bot.test") as client:
        assert (await client.get("/metrics")).status_code == 503


async def test_hosted_on_connect_metrics_answer_under_its_prefix_with_the_header(
    clean_environment,
    monkeypatch,
    capsys,
    fake_slack: FakeSlack,
    fake_connect: FakeConnect,
    tmp_path,
) -> None:
    """`bot.asgi:app` as Connect runs it: settings from the environment, under /content/<guid>/,
    Authorization holding Connect's own key scheme and the token in X-Metrics-Token."""
    set_bot_environment(monkeypatch, fake_slack, fake_connect, f"sqlite:///{tmp_path / 'h.db'}")
    monkeypatch.setenv("METRICS_ENABLED", "true")
    monkeypatch.setenv("METRICS_TOKEN", TOKEN)
    sock = free_socket()
    server = uvicorn.Server(
        uvicorn.Config(LazyApp(), lifespan="on", log_config=None, root_path="/content/abc")
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        for _ in range(1000):
            if server.started or task.done():
                break
            await asyncio.sleep(0.01)
        assert server.started, capsys.readouterr().err
        base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            behind_connect = {"Authorization": "Key visitor-api-key", "X-Metrics-Token": TOKEN}
            response = await http.get("/metrics", headers=behind_connect)
            assert response.status_code == 200
            assert f"{P}_outbox_messages 0.0" in response.text
            assert (await http.get("/metrics")).status_code == 401
    finally:
        server.should_exit = True
        await task
