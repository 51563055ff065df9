"""The insights view's pure parts on their own: the query string, ISO weeks, outcomes, durations,
the SVG chart (valid XML, bar heights proportional to the counts, every text escaped) and the
page around it."""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta, timezone

import pytest
from starlette.datastructures import QueryParams

from bot.store.audit_queries import (
    DecisionTimes,
    OldestWaiting,
    RequestInsights,
    WeekStateCount,
)
from bot.web.audit_page import BadQuery, parse_view
from bot.web.insights import (
    CHART_HEIGHT,
    DEFAULT_WEEKS,
    MAX_WEEKS,
    OTHER,
    OUTCOMES,
    InsightsQuery,
    InsightsView,
    Outcome,
    WeekBar,
    axis_scale,
    build_view,
    duration_text,
    insights_json,
    iso_week,
    parse_insights_query,
    render_chart_svg,
    render_insights,
    week_starts,
)
from tests.support.audit_html import parse_html

SVG = "{http://www.w3.org/2000/svg}"
NOW = datetime(2026, 3, 18, 12, 0, tzinfo=UTC)
HOSTILE = '<script>alert("x")</script>\'&amp; ]]> =1+1'


def q(query: str) -> QueryParams:
    return QueryParams(query)


# -- the query string ----------------------------------------------------------------------------


def test_defaults_and_formats() -> None:
    assert parse_insights_query(q("view=insights"), None) == InsightsQuery(DEFAULT_WEEKS, "html")
    assert parse_insights_query(q("weeks=4&format=JSON"), None) == InsightsQuery(4, "json")
    assert parse_insights_query(q(""), "application/json").format == "json"
    # A client taking only CSV gets the page: the insights have no CSV.
    assert parse_insights_query(q(""), "text/csv").format == "html"
    assert parse_insights_query(q(f"weeks={MAX_WEEKS}"), None).weeks == MAX_WEEKS
    # The list's own parameters mean nothing here.
    assert parse_insights_query(q("state=bogus&page=x&weeks=1"), None).weeks == 1


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("weeks=0", "weeks must be a whole number from 1 to 26"),
        ("weeks=27", "weeks must be a whole number from 1 to 26"),
        ("weeks=-1", "weeks must be a whole number"),
        ("weeks=%2B3", "weeks must be a whole number"),
        ("weeks=1e3", "weeks must be a whole number"),
        ("weeks=3.0", "weeks must be a whole number"),
        ("weeks=%D9%A3", "weeks must be a whole number"),  # an Arabic-Indic 3
        ("weeks=" + "9" * 400, "weeks must be a whole number"),
        ("weeks=2&weeks=3", "give weeks at most once"),
        ("format=csv", "the insights come as format html or json"),
        ("format=svg", "the insights come as format html or json"),
        ("format=json&format=html", "give format at most once"),
        ("weeks=1%00", "must not contain control characters"),
        ("x%1b=1", "must not contain control characters"),
    ],
)
def test_bad_input_names_the_parameter(query: str, message: str) -> None:
    with pytest.raises(BadQuery, match=message.replace("(", r"\(").replace("+", r"\+")):
        parse_insights_query(q(query), None)


def test_the_view_parameter() -> None:
    assert parse_view(q("")) == "requests"
    assert parse_view(q("view=")) == "requests"
    assert parse_view(q("view=requests")) == "requests"
    assert parse_view(q("view=Insights")) == "insights"
    with pytest.raises(BadQuery, match="unknown view 'charts'; use one of: requests, insights"):
        parse_view(q("view=charts"))
    with pytest.raises(BadQuery, match="give view at most once"):
        parse_view(q("view=insights&view=insights"))


# -- weeks ---------------------------------------------------------------------------------------


def test_week_starts_are_mondays_at_midnight_utc() -> None:
    starts = week_starts(NOW, 12)
    assert len(starts) == 12
    assert starts[-1] == datetime(2026, 3, 16, tzinfo=UTC)
    assert starts[0] == datetime(2025, 12, 29, tzinfo=UTC)
    assert all(b - a == timedelta(weeks=1) for a, b in itertools.pairwise(starts))
    assert [iso_week(start) for start in (starts[0], starts[-1])] == ["2026-W01", "2026-W12"]


@pytest.mark.parametrize(
    ("now", "monday"),
    [
        (datetime(2026, 3, 16, 0, 0, tzinfo=UTC), datetime(2026, 3, 16, tzinfo=UTC)),
        (datetime(2026, 3, 15, 23, 59, 59, tzinfo=UTC), datetime(2026, 3, 9, tzinfo=UTC)),
        (datetime(2026, 3, 22, 23, 59, tzinfo=UTC), datetime(2026, 3, 16, tzinfo=UTC)),
        # 01:00 on Monday in UTC+2 is still Sunday in UTC: weeks are UTC weeks.
        (
            datetime(2026, 3, 16, 1, 0, tzinfo=timezone(timedelta(hours=2))),
            datetime(2026, 3, 9, tzinfo=UTC),
        ),
    ],
)
def test_the_current_week(now: datetime, monday: datetime) -> None:
    assert week_starts(now, 1) == (monday,)


def test_week_labels_across_a_year() -> None:
    bar = WeekBar(start=datetime(2025, 12, 29, tzinfo=UTC), counts=())
    assert bar.label == "2026-W01"
    assert bar.days == "29 Dec 2025 to 4 Jan 2026"
    assert WeekBar(start=datetime(2026, 3, 2, tzinfo=UTC), counts=()).days == "2 Mar to 8 Mar 2026"
    assert iso_week(datetime(2027, 1, 1, tzinfo=UTC)) == "2026-W53"


# -- figures -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "\N{EN DASH}"),
        (0, "under a minute"),
        (29, "under a minute"),
        (45 * 60, "45 min"),
        (3600, "1 h"),
        (5.5 * 3600, "5 h 30 min"),
        (9.1 * 3600, "9 h 6 min"),
        (24 * 3600, "1 d"),
        (79 * 86400 + 13 * 3600 + 20, "79 d 13 h"),
    ],
)
def test_duration_text(seconds: float | None, text: str) -> None:
    assert duration_text(seconds) == text


@pytest.mark.parametrize(
    ("maximum", "scale"),
    [(0, (4, 1)), (1, (1, 1)), (5, (5, 1)), (7, (8, 2)), (10, (10, 2)), (11, (15, 5)),
     (23, (25, 5)), (99, (100, 20)), (101, (150, 50)), (4321, (5000, 1000))],
)  # fmt: skip
def test_axis_scale(maximum: int, scale: tuple[int, int]) -> None:
    assert axis_scale(maximum) == scale


def insights(counts: list[tuple[int, str, int]], weeks: int = 3) -> RequestInsights:
    return RequestInsights(
        week_starts=week_starts(NOW, weeks),
        counts=tuple(WeekStateCount(week, state, n) for week, state, n in counts),
        decision_times=DecisionTimes(decided=4, median_seconds=5400.0, p90_seconds=36000.0),
        waiting=2,
        oldest_waiting=OldestWaiting("r1", "amara", NOW - timedelta(days=2, hours=3)),
    )


def test_states_become_outcomes() -> None:
    view = build_view(
        insights(
            [
                (0, "approved", 2),
                (0, "already_exists", 1),
                (0, "provisioning", 1),
                (1, "incomplete", 1),
                (1, "closed", 2),
                (1, "denied", 3),
                (2, "pending", 4),
                (2, "expired", 1),
                (2, "cancelled", 1),
            ]
        ),
        now=NOW,
    )
    assert view.outcomes == OUTCOMES  # no Other: every state is known
    keys = [outcome.key for outcome in view.outcomes]
    counted = [dict(zip(keys, week.counts, strict=True)) for week in view.weeks]
    assert counted[0]["approved"] == 4 and view.weeks[0].total == 4
    assert counted[1]["incomplete"] == 3 and counted[1]["denied"] == 3
    assert counted[2] == {**dict.fromkeys(keys, 0), "waiting": 4, "expired": 1, "cancelled": 1}
    assert view.total == 16
    assert view.oldest_waiting_seconds == (2 * 24 + 3) * 3600


def test_a_state_this_release_does_not_know_is_counted_as_other() -> None:
    view = build_view(insights([(1, "escalated_to_mars", 2), (1, "denied", 1)]), now=NOW)
    assert view.outcomes[-1] == OTHER
    assert view.weeks[1].counts[-1] == 2 and view.weeks[1].total == 3
    body = insights_json(view)
    assert body["weeks"][1]["counts"]["other"] == 2
    assert body["outcomes"][-1] == {"key": "other", "label": "Other", "states": []}


def test_json() -> None:
    body = insights_json(build_view(insights([(0, "approved", 2), (2, "pending", 1)]), now=NOW))
    assert body["window"] == {
        "weeks": 3,
        "from": "2026-03-02T00:00:00Z",
        "until": "2026-03-18T12:00:00Z",
    }
    assert [week["week"] for week in body["weeks"]] == ["2026-W10", "2026-W11", "2026-W12"]
    assert body["weeks"][0]["starts"] == "2026-03-02"
    assert body["weeks"][0]["counts"]["approved"] == 2 and body["weeks"][0]["total"] == 2
    assert body["time_to_decision"] == {"decided": 4, "median_seconds": 5400, "p90_seconds": 36000}
    assert body["waiting"] == {
        "count": 2,
        "oldest": {
            "id": "r1",
            "username": "amara",
            "created_at": "2026-03-16T09:00:00Z",
            "waiting_seconds": 183600,
        },
    }


# -- the SVG -------------------------------------------------------------------------------------


def chart(view: InsightsView) -> ET.Element:
    """The SVG parsed as XML: it must be well-formed on its own."""
    return ET.fromstring(render_chart_svg(view))


def segments(root: ET.Element) -> list[ET.Element]:
    return [rect for rect in root.iter(f"{SVG}rect") if rect.get("class") == "segment"]


def test_bar_heights_are_proportional_to_the_counts() -> None:
    view = build_view(
        insights([(0, "approved", 3), (0, "denied", 1), (1, "approved", 7), (2, "pending", 2)]),
        now=NOW,
    )
    root = chart(view)
    drawn = {
        (rect.get("data-week"), rect.get("data-outcome")): (
            int(rect.get("data-count") or 0),
            float(rect.get("y") or 0),
            float(rect.get("height") or 0),
        )
        for rect in segments(root)
    }
    assert {key: value[0] for key, value in drawn.items()} == {
        ("2026-W10", "approved"): 3,
        ("2026-W10", "denied"): 1,
        ("2026-W11", "approved"): 7,
        ("2026-W12", "waiting"): 2,
    }
    per_request = {round(height / count, 1) for count, _, height in drawn.values()}
    assert len(per_request) == 1  # one scale for every segment
    # The axis goes to 8 (step 2): seven requests fill 7/8 of the plot.
    (unit,) = per_request
    assert unit == pytest.approx((CHART_HEIGHT - 56 - 44) / 8, abs=0.1)
    # Stacked: the denied segment sits on top of the approved one.
    _, approved_y, _ = drawn[("2026-W10", "approved")]
    _, denied_y, denied_height = drawn[("2026-W10", "denied")]
    assert denied_y + denied_height == pytest.approx(approved_y, abs=0.02)
    totals = {text.text for text in root.iter(f"{SVG}text") if text.get("class") == "total"}
    assert totals == {"4", "7", "2"}
    bars = {
        g.get("data-week"): g.get("data-total")
        for g in root.iter(f"{SVG}g")
        if g.get("class") == "bar"
    }
    assert bars == {"2026-W10": "4", "2026-W11": "7", "2026-W12": "2"}


def test_the_chart_is_readable_without_a_script() -> None:
    view = build_view(insights([(0, "approved", 3), (0, "denied", 1)]), now=NOW)
    root = chart(view)
    assert root.get("role") == "img"
    assert root.get("aria-labelledby") == "chart-title chart-desc"
    title = root.find(f"{SVG}title")
    assert title is not None and title.text == (
        "Requests per week by outcome, weeks 2026-W10 to 2026-W12 (UTC)"
    )
    desc = root.find(f"{SVG}desc")
    assert desc is not None and desc.text is not None
    assert desc.text.startswith("4 requests filed in these weeks. Approved: 3,")
    legend = [
        "".join(item.itertext())
        for item in root.iter(f"{SVG}g")
        if item.get("class") == "legend-item"
    ]
    assert legend == [outcome.label for outcome in OUTCOMES]
    bar_titles = [
        g.findtext(f"{SVG}title") for g in root.iter(f"{SVG}g") if g.get("class") == "bar"
    ]
    assert bar_titles == [
        "Week 2026-W10 (2 Mar to 8 Mar 2026): 3 approved, 1 denied",
        "Week 2026-W11 (9 Mar to 15 Mar 2026): no requests",
        "Week 2026-W12 (16 Mar to 22 Mar 2026): no requests",
    ]
    assert [rect.findtext(f"{SVG}title") for rect in segments(root)] == [
        "Approved: 3 in week 2026-W10",
        "Denied: 1 in week 2026-W10",
    ]
    weeks = [text.text for text in root.iter(f"{SVG}text") if text.get("class") == "week"]
    assert weeks == ["W10", "W11", "W12"]


def test_every_text_in_the_chart_is_escaped() -> None:
    """No text in the chart comes from a person today; if a label ever does, it stays text."""
    evil = Outcome(key=HOSTILE, label=HOSTILE, colour='"/><script>x</script>', states=())
    view = InsightsView(
        now=NOW,
        outcomes=(evil,),
        weeks=(WeekBar(start=datetime(2026, 3, 16, tzinfo=UTC), counts=(2,)),),
        decision_times=DecisionTimes(0, None, None),
        waiting=0,
        oldest_waiting=None,
    )
    svg = render_chart_svg(view)
    assert "<script" not in svg
    root = ET.fromstring(svg)
    assert not list(root.iter(f"{SVG}script")) and not list(root.iter("script"))
    (segment,) = segments(root)
    assert segment.get("data-outcome") == HOSTILE
    assert segment.get("fill") == '"/><script>x</script>'
    assert segment.findtext(f"{SVG}title") == f"{HOSTILE}: 2 in week 2026-W12"
    legend_texts = [t.text for t in root.iter(f"{SVG}text") if t.text == HOSTILE]
    assert legend_texts == [HOSTILE]


def test_an_empty_window_still_draws_its_axis_and_weeks() -> None:
    root = chart(build_view(insights([], weeks=DEFAULT_WEEKS), now=NOW))
    assert segments(root) == []
    totals = [text.text for text in root.iter(f"{SVG}text") if text.get("class") == "total"]
    assert totals == ["0"] * DEFAULT_WEEKS


def test_the_widest_window_fits() -> None:
    counts = [(week, "approved", week + 1) for week in range(MAX_WEEKS)]
    root = chart(build_view(insights(counts, weeks=MAX_WEEKS), now=NOW))
    assert len(segments(root)) == MAX_WEEKS
    for rect in segments(root):
        assert 0 <= float(rect.get("x") or -1) < 760
        assert float(rect.get("y") or -1) >= 56 - 0.01


# -- the page ------------------------------------------------------------------------------------


def test_the_page_escapes_what_a_person_wrote() -> None:
    data = insights([(0, "approved", 3), (2, "pending", 1)])
    data = RequestInsights(
        week_starts=data.week_starts,
        counts=data.counts,
        decision_times=data.decision_times,
        waiting=1,
        oldest_waiting=OldestWaiting("r1", HOSTILE, NOW - timedelta(hours=26)),
    )
    html = render_insights(build_view(data, now=NOW), InsightsQuery(3, "html"), visitor=HOSTILE)
    document = parse_html(html)
    assert not document.find_all("script")
    assert document.find("p", id="oldest").find("strong").text == HOSTILE
    assert HOSTILE in document.find("header").text
    assert document.find("span", id="median").text == "1 h 30 min"
    assert document.find("span", id="p90").text == "10 h"
    assert document.find("span", id="waiting-count").text == "1"
    assert document.find("span", id="oldest-age").text == "1 d 2 h"
    # The table repeats the chart's numbers.
    row = document.find("tr", data_week="2026-W10")
    cells = [cell.text for cell in row.find_all("td")]
    assert cells[0] == "2026-W10" and cells[2] == "3" and cells[-1] == "3"
    # One SVG, inline; the links are relative queries.
    assert len(document.find_all("svg")) == 1
    assert [a.attrs["href"] for a in document.find("nav", **{"class": "views"}).find_all("a")] == [
        "?",
        "?view=insights&weeks=3&format=json",
    ]
    assert document.find("input", name="weeks").attrs["max"] == str(MAX_WEEKS)


def test_the_page_without_decisions_or_waiting() -> None:
    data = RequestInsights(
        week_starts=week_starts(NOW, 2),
        counts=(),
        decision_times=DecisionTimes(0, None, None),
        waiting=0,
        oldest_waiting=None,
    )
    document = parse_html(
        render_insights(build_view(data, now=NOW), InsightsQuery(2, "html"), visitor="a")
    )
    assert "has been decided yet" in document.find("p", id="decided").text
    assert document.find_all("p", id="oldest") == []
    assert document.find("span", id="waiting-count").text == "0"
