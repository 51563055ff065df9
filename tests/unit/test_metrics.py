"""The metrics adapter alone: labels that cannot carry data, a registry per app, a scrape that
survives the store being down, and the counters behind the cache and the Slack client."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

from bot.cache.backend import build_backend
from bot.cache.keyed import KeyedCache, cache_name
from bot.metrics import OutboxBacklog, PrometheusMetrics, endpoint_template, safe_label
from bot.slack.call_metrics import SlackCallCounter, api_method
from bot.workflow.models import OutboxKind

GUID = "6f300623-1e0c-48e6-a473-ddf630c0c0c3"
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text.decode())
        for sample in family.samples
    }


def test_endpoints_are_templates_never_values() -> None:
    assert endpoint_template("v1/users/{guid}") == "/v1/users/{guid}"
    assert endpoint_template("v1/users") == "/v1/users"
    assert endpoint_template("server_settings") == "/server_settings"
    # Should a real path slip through, its GUID becomes the template's, and a query goes.
    assert endpoint_template(f"v1/users/{GUID}") == "/v1/users/{guid}"
    assert endpoint_template(f"v1/groups/{GUID.upper()}/members") == "/v1/groups/{guid}/members"
    assert endpoint_template("v1/users?prefix=julie") == "/v1/users"
    assert endpoint_template("v1/users/julie@example.com") == "other"


def test_odd_label_values_become_other() -> None:
    assert safe_label("channel_not_found") == "channel_not_found"
    assert safe_label("chat.postMessage") == "chat.postMessage"
    assert safe_label("200") == "200"
    for odd in ("julie@example.com", "has space", "", "x" * 100, "<script>", "ok\n"):
        assert safe_label(odd) == "other", odd
    assert endpoint_template("v1/users\n") == "other"


def test_connect_error_codes_are_small_numbers_or_other() -> None:
    metrics = PrometheusMetrics()
    for code in ("23", "1234", "", "12345", "99999999999999999999", "-1", "²", "4\n"):
        metrics.connect_call("PUT", "v1/users/{guid}", "403", code, 0.1)
    codes = {
        labels[3]: counter._value.get()
        for labels, counter in metrics.connect_requests._metrics.items()
    }
    assert codes == {"23": 1, "1234": 1, "": 1, "other": 5}


def test_given_up_messages_are_counted_by_outbox_kind_from_zero() -> None:
    metrics = PrometheusMetrics()
    given_up = samples(generate_latest(metrics.registry))
    name = "connect_user_bot_outbox_given_up_total"
    # Every kind is there at 0 before anything is given up, so increase() sees the first.
    assert {labels for (n, labels) in given_up if n == name} == {
        (("kind", kind.value),) for kind in OutboxKind
    }
    metrics.outbox_given_up("post_card")
    metrics.outbox_given_up("julie@example.com")
    after = samples(generate_latest(metrics.registry))
    assert after[(name, (("kind", "post_card"),))] == 1
    assert after[(name, (("kind", "other"),))] == 1
    assert after[(name, (("kind", "welcome"),))] == 0


def test_each_app_has_a_registry_of_its_own() -> None:
    one, two = PrometheusMetrics(), PrometheusMetrics()  # a shared registry would refuse this
    one.request_filed("new_account")
    assert one.requests_filed.labels("new_account")._value.get() == 1
    assert two.requests_filed.labels("new_account")._value.get() == 0
    assert REGISTRY.get_sample_value("connect_user_bot_requests_filed_total") is None


async def test_scrape_reads_the_outbox_and_survives_its_failure() -> None:
    answers: list[OutboxBacklog | Exception] = [(3, NOW - timedelta(minutes=6)), OSError()]

    async def backlog() -> OutboxBacklog:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    metrics = PrometheusMetrics(outbox_backlog=backlog, clock=lambda: NOW)
    first = samples(await metrics.exposition())
    assert first[("connect_user_bot_outbox_messages", ())] == 3
    assert first[("connect_user_bot_outbox_oldest_age_seconds", ())] == 360
    # The store down: the rest is served, with the last numbers and the failure counted.
    second = samples(await metrics.exposition())
    assert second[("connect_user_bot_outbox_messages", ())] == 3
    assert second[("connect_user_bot_outbox_read_failures_total", ())] == 1


async def test_a_slow_outbox_read_does_not_hold_the_scrape(monkeypatch) -> None:
    monkeypatch.setattr("bot.metrics.BACKLOG_READ_SECONDS", 0.05)

    async def stuck() -> OutboxBacklog:
        await asyncio.sleep(10)
        return (0, None)

    metrics = PrometheusMetrics(outbox_backlog=stuck)
    text = samples(await asyncio.wait_for(metrics.exposition(), 2))
    assert text[("connect_user_bot_outbox_read_failures_total", ())] == 1


async def test_cache_counts_hits_misses_and_shared_lookups() -> None:
    metrics = PrometheusMetrics()
    cache = KeyedCache(build_backend(None), metrics=metrics)
    release = asyncio.Event()

    async def compute() -> str:
        await release.wait()
        return "value"

    first = asyncio.ensure_future(cache.get_or_compute("search:abc", compute, ttl=60))
    await asyncio.sleep(0)
    second = asyncio.ensure_future(cache.get_or_compute("search:abc", compute, ttl=60))
    await asyncio.sleep(0)
    release.set()
    assert await first == await second == "value"
    assert await cache.get_or_compute("search:abc", compute, ttl=60) == "value"
    lookups = metrics.cache_lookups
    assert lookups.labels("search", "miss")._value.get() == 1
    assert lookups.labels("search", "shared")._value.get() == 1
    assert lookups.labels("search", "hit")._value.get() == 1
    await cache.close()


def test_cache_names_come_from_key_prefixes_only() -> None:
    assert cache_name("search:0123abcd") == "search"
    assert cache_name("permalink:0123") == "permalink"
    assert cache_name("0123abcd") == "other"
    assert cache_name("a b:c") == "other"


def slack_request(method: str) -> HttpRequest:
    return HttpRequest(
        method="POST", url=f"https://slack.com/api/{method}", headers={}, body_params={}
    )


async def test_slack_counter_counts_and_never_retries() -> None:
    metrics = PrometheusMetrics()
    counter = SlackCallCounter(metrics)
    state = RetryState()

    async def shown(method: str, **kwargs: object) -> bool:
        return await counter.can_retry_async(state=state, request=slack_request(method), **kwargs)  # type: ignore[arg-type]

    ok = HttpResponse(status_code=200, headers={}, body={"ok": True})
    refused = HttpResponse(
        status_code=200, headers={}, body={"ok": False, "error": "not_in_channel"}
    )
    limited = HttpResponse(status_code=429, headers={}, body={"ok": False, "error": "ratelimited"})
    assert not await shown("chat.postMessage", response=ok)
    assert not await shown("chat.postMessage", response=refused)
    assert not await shown("views.open", response=limited)
    assert not await shown("auth.test", error=TimeoutError())

    assert metrics.slack_errors.labels("chat.postMessage", "not_in_channel")._value.get() == 1
    assert metrics.slack_errors.labels("views.open", "ratelimited")._value.get() == 1
    assert metrics.slack_rate_limits.labels("views.open")._value.get() == 1
    assert metrics.slack_errors.labels("auth.test", "TimeoutError")._value.get() == 1
    assert metrics.slack_rate_limits.labels("chat.postMessage")._value.get() == 0


@pytest.mark.parametrize(
    ("url", "method"),
    [
        ("https://slack.com/api/chat.postMessage", "chat.postMessage"),
        ("http://127.0.0.1:9/api/views.open/", "views.open"),
        ("https://slack.com/api/users.info?user=U1", "users.info"),
        ("https://slack.com/api/users.profile.get", "users.profile.get"),
        ("https://slack.com/api/oauth.v2.access", "oauth.v2.access"),
        # Not a Slack method's shape: never a label.
        ("https://slack.com/api/julie@example.com", "other"),
        ("https://slack.com/api/", "other"),
        ("https://slack.com/api/postMessage", "other"),
        ("https://slack.com/api/chat.post-message", "other"),
        ("https://slack.com/api/Chat.postMessage", "other"),
        (f"https://slack.com/api/files.{'x' * 100}", "other"),
    ],
)
def test_api_method_is_read_from_the_url(url: str, method: str) -> None:
    assert api_method(url) == method
