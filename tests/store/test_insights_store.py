"""The insights aggregates on SQLite and PostgreSQL: counts per ISO week and state, the median and
90th percentile time to decision, and the requests waiting now, against data with known answers
(tests/support/insights_data.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from bot.store.audit_queries import interpolation_ranks, request_insights
from bot.web.insights import week_starts
from bot.workflow.states import RequestState
from tests.support import store_backends
from tests.support.insights_data import (
    DECIDED,
    MEDIAN_SECONDS,
    NOW,
    OLDEST_WAITING,
    P90_SECONDS,
    W01,
    WAITING,
    file_at,
    seed_insights,
    week,
)
from tests.support.store_backends import StoreBackend

# Fixtures, assigned so that test parameters of these names are not redefinitions.
store_backend = store_backends.store_backend
sqlite_store_backend = store_backends.sqlite_store_backend
postgres_store_backend = store_backends.postgres_store_backend
S_APPROVED = RequestState.APPROVED


def by_week_and_state(insights) -> dict[tuple[int, str], int]:
    return {(count.week, count.state): count.count for count in insights.counts}


async def test_counts_times_and_waiting(store_backend: StoreBackend) -> None:
    await seed_insights(store_backend.store)
    starts = week_starts(NOW, 12)
    assert starts[0] == W01 and starts[-1] == week(12)
    insights = await request_insights(store_backend.engine, starts)

    assert insights.week_starts == starts
    # Week indexes: 0 is 2026-W01, 8 is W09, 11 is W12.
    assert by_week_and_state(insights) == {
        (0, "expired"): 1,
        (8, "approved"): 1,  # filed the second before W10 began
        (8, "already_exists"): 1,
        (9, "approved"): 2,  # one filed at W10's first instant
        (9, "denied"): 1,
        (10, "approved"): 2,
        (10, "denied"): 2,
        (10, "incomplete"): 1,
        (10, "cancelled"): 1,
        (10, "expired"): 1,
        (11, "pending"): 2,
    }
    times = insights.decision_times
    assert times.decided == DECIDED
    assert times.median_seconds == pytest.approx(MEDIAN_SECONDS, abs=0.5)
    assert times.p90_seconds == pytest.approx(P90_SECONDS, abs=0.5)
    assert insights.waiting == WAITING
    assert insights.oldest_waiting is not None
    assert insights.oldest_waiting.id == OLDEST_WAITING
    assert insights.oldest_waiting.created_at == W01 - timedelta(hours=1)


async def test_a_shorter_window_counts_only_its_weeks(store_backend: StoreBackend) -> None:
    await seed_insights(store_backend.store)
    insights = await request_insights(store_backend.engine, week_starts(NOW, 2))
    assert by_week_and_state(insights) == {
        (0, "approved"): 2,
        (0, "denied"): 2,
        (0, "incomplete"): 1,
        (0, "cancelled"): 1,
        (0, "expired"): 1,
        (1, "pending"): 2,
    }
    # Decided in W11: 6 h, 7 h, 8 h, 9 h and 10 h.
    assert insights.decision_times.decided == 5
    assert insights.decision_times.median_seconds == pytest.approx(8 * 3600, abs=0.5)
    assert insights.decision_times.p90_seconds == pytest.approx(9.6 * 3600, abs=0.5)
    # Waiting is about now, whatever the window.
    assert insights.waiting == WAITING


async def test_an_empty_store(store_backend: StoreBackend) -> None:
    insights = await request_insights(store_backend.engine, week_starts(NOW, 12))
    assert insights.counts == ()
    assert insights.decision_times.decided == 0
    assert insights.decision_times.median_seconds is None
    assert insights.decision_times.p90_seconds is None
    assert insights.waiting == 0 and insights.oldest_waiting is None


async def test_one_decision_is_its_own_median_and_p90(store_backend: StoreBackend) -> None:
    await file_at(
        store_backend.store, "only", week(12), S_APPROVED, timedelta(minutes=90, seconds=30)
    )
    times = (await request_insights(store_backend.engine, week_starts(NOW, 1))).decision_times
    assert times.decided == 1
    assert times.median_seconds == pytest.approx(5430, abs=0.5)
    assert times.p90_seconds == pytest.approx(5430, abs=0.5)


async def test_the_percentiles_match_postgresql_percentile_cont(
    postgres_store_backend: StoreBackend,
) -> None:
    """The two-row interpolation gives what PostgreSQL's own percentile_cont gives."""
    backend = postgres_store_backend
    for n, minutes in enumerate((5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47)):
        await file_at(backend.store, f"p{n}", week(12), S_APPROVED, timedelta(minutes=minutes))
    insights = await request_insights(backend.engine, week_starts(NOW, 1))
    async with backend.engine.connect() as conn:
        median, p90 = (
            await conn.execute(
                sa.text(
                    "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY s), "
                    "percentile_cont(0.9) WITHIN GROUP (ORDER BY s) FROM ("
                    "SELECT extract(epoch FROM decided_at - created_at) AS s "
                    "FROM provisioning_requests) AS d"
                )
            )
        ).one()
    assert insights.decision_times.median_seconds == pytest.approx(float(median))
    assert insights.decision_times.p90_seconds == pytest.approx(float(p90))


def test_interpolation_ranks() -> None:
    assert interpolation_ranks(10, 0.5) == (4, pytest.approx(0.5))
    assert interpolation_ranks(10, 0.9) == (8, pytest.approx(0.1))
    assert interpolation_ranks(1, 0.9) == (0, 0.0)
    assert interpolation_ranks(11, 0.5) == (5, 0.0)


async def test_the_window_is_bounded_and_ordered(sqlite_store_backend: StoreBackend) -> None:
    engine = sqlite_store_backend.engine
    with pytest.raises(ValueError, match="week starts"):
        await request_insights(engine, ())
    with pytest.raises(ValueError, match="week starts"):
        await request_insights(engine, week_starts(NOW, 54))
    with pytest.raises(ValueError, match="increase"):
        await request_insights(engine, tuple(reversed(week_starts(NOW, 2))))
