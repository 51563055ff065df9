"""The audit page's insights view (`?view=insights`), for the people who decide: requests per ISO
week (UTC) by outcome, how long decisions take, and what is waiting now.

Everything here is pure: the query string is read and bounded, the store's aggregates become a
view, and the view becomes JSON, an SVG chart or the page around it. The chart is drawn on the
server as SVG, so it needs no JavaScript and no external assets (the page's Content-Security-Policy
allows neither): its numbers are text, every bar has a <title>, there is a legend, and the page
repeats the numbers in a table. Every text in the SVG goes through `_text` or `_attr`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeGuard
from xml.sax.saxutils import escape, quoteattr

from markupsafe import Markup
from starlette.datastructures import QueryParams

from bot.store.audit_queries import DecisionTimes, OldestWaiting, RequestInsights
from bot.web.audit_page import (
    TEMPLATES,
    BadQuery,
    bounded_int,
    negotiate,
    refuse_control_characters,
)

InsightsFormat = Literal["html", "json"]
INSIGHTS_FORMATS: tuple[InsightsFormat, ...] = ("html", "json")
DEFAULT_WEEKS = 12
# Half a year: enough to see a trend, few enough bars to read (and a small query).
MAX_WEEKS = 26
_SINGLE_VALUED = ("view", "weeks", "format")


def is_insights_format(value: str) -> TypeGuard[InsightsFormat]:
    return value in INSIGHTS_FORMATS


@dataclass(frozen=True, slots=True)
class InsightsQuery:
    weeks: int = DEFAULT_WEEKS
    format: InsightsFormat = "html"


def parse_insights_query(params: QueryParams, accept: str | None) -> InsightsQuery:
    """Read and bound the query string, or raise BadQuery naming the parameter. The list's own
    parameters (state, q, page, per_page) mean nothing here and are ignored."""
    refuse_control_characters(params)
    for name in _SINGLE_VALUED:
        if len(params.getlist(name)) > 1:
            raise BadQuery(f"give {name} at most once")
    weeks = bounded_int(params.get("weeks"), "weeks", 1, MAX_WEEKS, default=DEFAULT_WEEKS)
    wanted = (params.get("format") or "").lower()
    if not wanted:
        negotiated = negotiate(accept)
        # A client that only takes CSV gets the page: there is no CSV of the insights.
        fmt: InsightsFormat = "json" if negotiated == "json" else "html"
    elif is_insights_format(wanted):
        fmt = wanted
    else:
        raise BadQuery(f"the insights come as format {' or '.join(INSIGHTS_FORMATS)}")
    return InsightsQuery(weeks=weeks, format=fmt)


def week_starts(now: datetime, weeks: int) -> tuple[datetime, ...]:
    """The first instant (Monday 00:00 UTC) of each of the last `weeks` ISO weeks, the current
    one last."""
    if weeks < 1:
        raise ValueError("weeks starts at 1")
    today = now.astimezone(UTC).date()
    monday = today - timedelta(days=today.weekday())
    current = datetime(monday.year, monday.month, monday.day, tzinfo=UTC)
    return tuple(current - timedelta(weeks=back) for back in range(weeks - 1, -1, -1))


def iso_week(start: datetime) -> str:
    year, week, _ = start.isocalendar()
    return f"{year}-W{week:02d}"


# -- outcomes ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outcome:
    key: str
    label: str
    colour: str  # the Okabe-Ito palette: told apart with every common colour blindness
    states: tuple[str, ...]


OUTCOMES: tuple[Outcome, ...] = (
    # Approved by an approver: provisioning is an approval being carried out, already_exists one
    # that found the account in Connect.
    Outcome("approved", "Approved", "#009e73", ("approved", "already_exists", "provisioning")),
    # Approved, but a later step (setting the role) failed: waiting for a retry, or closed.
    Outcome("incomplete", "Incomplete", "#e69f00", ("incomplete", "closed")),
    Outcome("denied", "Denied", "#d55e00", ("denied",)),
    Outcome("expired", "Expired", "#999999", ("expired",)),
    Outcome("cancelled", "Cancelled", "#cc79a7", ("cancelled",)),
    Outcome("waiting", "Waiting", "#56b4e9", ("pending",)),
)
# A state a newer release writes and this one does not know: counted, never dropped.
OTHER = Outcome("other", "Other", "#0072b2", ())
_OUTCOME_OF_STATE = {state: outcome for outcome in OUTCOMES for state in outcome.states}


def outcome_of(state: str) -> Outcome:
    return _OUTCOME_OF_STATE.get(state, OTHER)


# -- the view ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WeekBar:
    start: datetime
    counts: tuple[int, ...]  # one per InsightsView.outcomes, in that order

    @property
    def total(self) -> int:
        return sum(self.counts)

    @property
    def label(self) -> str:
        return iso_week(self.start)

    @property
    def days(self) -> str:
        """`2 Mar to 8 Mar 2026`: the week's Monday to Sunday."""
        end = self.start + timedelta(days=6)
        first = f"{self.start.day} {self.start:%b}"
        if self.start.year != end.year:
            first += f" {self.start.year}"
        return f"{first} to {end.day} {end:%b} {end.year}"


@dataclass(frozen=True, slots=True)
class InsightsView:
    now: datetime
    outcomes: tuple[Outcome, ...]  # the stacking order, bottom first; Other only when present
    weeks: tuple[WeekBar, ...]  # oldest first
    decision_times: DecisionTimes
    waiting: int
    oldest_waiting: OldestWaiting | None

    @property
    def total(self) -> int:
        return sum(week.total for week in self.weeks)

    @property
    def outcome_totals(self) -> tuple[int, ...]:
        return tuple(sum(week.counts[i] for week in self.weeks) for i in range(len(self.outcomes)))

    @property
    def period(self) -> str:
        first, last = self.weeks[0], self.weeks[-1]
        if first is last:
            return f"week {first.label}"
        return f"weeks {first.label} to {last.label}"

    @property
    def oldest_waiting_seconds(self) -> float | None:
        if self.oldest_waiting is None:
            return None
        return max(0.0, (self.now - self.oldest_waiting.created_at).total_seconds())


def build_view(data: RequestInsights, *, now: datetime) -> InsightsView:
    present = {outcome_of(count.state) for count in data.counts if count.count}
    outcomes = (*OUTCOMES, OTHER) if OTHER in present else OUTCOMES
    index = {outcome.key: position for position, outcome in enumerate(outcomes)}
    tallies = [[0] * len(outcomes) for _ in data.week_starts]
    for count in data.counts:
        tallies[count.week][index[outcome_of(count.state).key]] += count.count
    return InsightsView(
        now=now,
        outcomes=outcomes,
        weeks=tuple(
            WeekBar(start=start, counts=tuple(tally))
            for start, tally in zip(data.week_starts, tallies, strict=True)
        ),
        decision_times=data.decision_times,
        waiting=data.waiting,
        oldest_waiting=data.oldest_waiting,
    )


def duration_text(seconds: float | None) -> str:
    """`5 h 30 min`, `45 min`, `2 d 3 h`: to the minute, the two largest units."""
    if seconds is None:
        return "\N{EN DASH}"
    minutes = round(seconds / 60)
    if minutes < 1:
        return "under a minute"
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{minutes} min"


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _whole(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds)


def insights_json(view: InsightsView) -> dict[str, Any]:
    oldest = view.oldest_waiting
    return {
        "window": {
            "weeks": len(view.weeks),
            "from": _iso(view.weeks[0].start),
            "until": _iso(view.now),
        },
        "outcomes": [
            {"key": outcome.key, "label": outcome.label, "states": list(outcome.states)}
            for outcome in view.outcomes
        ],
        "weeks": [
            {
                "week": week.label,
                "starts": week.start.date().isoformat(),
                "counts": {
                    outcome.key: count
                    for outcome, count in zip(view.outcomes, week.counts, strict=True)
                },
                "total": week.total,
            }
            for week in view.weeks
        ],
        "time_to_decision": {
            "decided": view.decision_times.decided,
            "median_seconds": _whole(view.decision_times.median_seconds),
            "p90_seconds": _whole(view.decision_times.p90_seconds),
        },
        "waiting": {
            "count": view.waiting,
            "oldest": None
            if oldest is None
            else {
                "id": oldest.id,
                "username": oldest.username,
                "created_at": _iso(oldest.created_at),
                "waiting_seconds": _whole(view.oldest_waiting_seconds),
            },
        },
    }


# -- the SVG chart -------------------------------------------------------------------------------

CHART_WIDTH = 760
CHART_HEIGHT = 340
_LEFT, _RIGHT, _TOP, _BOTTOM = 44, 12, 56, 44  # the plot's margins inside the chart
_LEGEND_Y = 18


def _text(value: str) -> str:
    """Character data: &, < and > escaped."""
    return escape(value)


def _attr(value: str) -> str:
    """An attribute value with its quotes, whatever characters it holds."""
    return quoteattr(value)


def _num(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def axis_scale(maximum: int) -> tuple[int, int]:
    """The axis' top and its step: 1, 2 or 5 times a power of ten, at most five steps."""
    if maximum <= 0:
        return 4, 1
    magnitude = 1
    while True:
        for multiple in (1, 2, 5):
            step = multiple * magnitude
            if math.ceil(maximum / step) <= 5:
                return math.ceil(maximum / step) * step, step
        magnitude *= 10


def _plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def render_chart_svg(view: InsightsView) -> str:
    """Requests per week, one bar per week stacked by outcome (the first outcome at the bottom).

    Readable as it stands: a <title> and <desc> for the whole chart, a <title> on every bar and
    segment, each bar's total written above it, the week under it, and a legend. Segments carry
    data-week, data-outcome and data-count, so a test can check what was drawn.
    """
    top, step = axis_scale(max((week.total for week in view.weeks), default=0))
    plot_left, plot_right = _LEFT, CHART_WIDTH - _RIGHT
    plot_top, plot_bottom = _TOP, CHART_HEIGHT - _BOTTOM
    plot_height = plot_bottom - plot_top
    slot = (plot_right - plot_left) / len(view.weeks)
    bar_width = min(slot * 0.62, 44.0)

    def y_of(value: float) -> float:
        return plot_bottom - value / top * plot_height

    title = f"Requests per week by outcome, {view.period} (UTC)"
    totals = ", ".join(
        f"{outcome.label}: {count}"
        for outcome, count in zip(view.outcomes, view.outcome_totals, strict=True)
    )
    description = f"{_plural(view.total, 'request', 'requests')} filed in these weeks. {totals}."
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="insights-chart" role="img" '
        f'viewBox="0 0 {CHART_WIDTH} {CHART_HEIGHT}" width="{CHART_WIDTH}" '
        f'height="{CHART_HEIGHT}" aria-labelledby="chart-title chart-desc" '
        f'font-family="system-ui, -apple-system, Segoe UI, Roboto, Helvetica, Arial, sans-serif" '
        f'font-size="12">',
        f'<title id="chart-title">{_text(title)}</title>',
        f'<desc id="chart-desc">{_text(description)}</desc>',
    ]

    # The legend, in stacking order, wrapped onto a second line if it needs one.
    out.append('<g class="legend">')
    x, y = float(plot_left), float(_LEGEND_Y)
    for outcome in view.outcomes:
        # An estimate of the label's width: SVG text cannot be measured on the server.
        width = 22 + 6.6 * len(outcome.label)
        if x + width > plot_right:
            x, y = float(plot_left), y + 18
        out.append(
            f'<g class="legend-item" data-outcome={_attr(outcome.key)}>'
            f'<rect x="{_num(x)}" y="{_num(y - 10)}" width="12" height="12" rx="2" '
            f"fill={_attr(outcome.colour)}/>"
            f'<text x="{_num(x + 17)}" y="{_num(y)}" fill="#1c2330">{_text(outcome.label)}</text>'
            "</g>"
        )
        x += width + 14
    out.append("</g>")

    # The value axis: a gridline and a label per step.
    out.append('<g class="axis" fill="#5d6776" text-anchor="end">')
    for value in range(0, top + 1, step):
        y_value = _num(y_of(value))
        out.append(
            f'<line x1="{plot_left}" x2="{plot_right}" y1="{y_value}" y2="{y_value}" '
            f'stroke="{"#8a94a3" if value == 0 else "#e3e7ec"}" stroke-width="1"/>'
            f'<text x="{plot_left - 6}" y="{_num(y_of(value) + 4)}">{value}</text>'
        )
    out.append("</g>")

    for position, week in enumerate(view.weeks):
        centre = plot_left + slot * (position + 0.5)
        left = _num(centre - bar_width / 2)
        week_title = f"Week {week.label} ({week.days}): "
        if week.total:
            week_title += ", ".join(
                f"{count} {outcome.label.lower()}"
                for outcome, count in zip(view.outcomes, week.counts, strict=True)
                if count
            )
        else:
            week_title += "no requests"
        out.append(
            f'<g class="bar" data-week={_attr(week.label)} data-total="{week.total}">'
            f"<title>{_text(week_title)}</title>"
        )
        below = 0
        for outcome, count in zip(view.outcomes, week.counts, strict=True):
            if not count:
                continue
            segment_top = y_of(below + count)
            height = y_of(below) - segment_top
            out.append(
                f'<rect class="segment" data-week={_attr(week.label)} '
                f'data-outcome={_attr(outcome.key)} data-count="{count}" x="{left}" '
                f'y="{_num(segment_top)}" width="{_num(bar_width)}" height="{_num(height)}" '
                f'fill={_attr(outcome.colour)} stroke="#ffffff" stroke-width="0.75">'
                f"<title>{_text(f'{outcome.label}: {count} in week {week.label}')}</title>"
                "</rect>"
            )
            below += count
        out.append(
            f'<text class="total" x="{_num(centre)}" y="{_num(y_of(week.total) - 5)}" '
            f'text-anchor="middle" fill="#1c2330" font-weight="600">{week.total}</text>'
            f'<text class="week" x="{_num(centre)}" y="{plot_bottom + 16}" text-anchor="middle" '
            f'fill="#1c2330">{_text("W" + week.label.rpartition("W")[2])}</text>'
            f'<text x="{_num(centre)}" y="{plot_bottom + 31}" text-anchor="middle" '
            f'fill="#5d6776" font-size="10.5">{_text(f"{week.start.day} {week.start:%b}")}</text>'
            "</g>"
        )
    out.append("</svg>")
    return "".join(out)


# -- the page ------------------------------------------------------------------------------------


def render_insights(view: InsightsView, query: InsightsQuery, *, visitor: str) -> str:
    # The chart is the one piece of markup the page does not escape itself: render_chart_svg
    # escapes every text it writes (tested alone, with hostile values).
    chart = Markup(render_chart_svg(view))  # noqa: S704
    return TEMPLATES.get_template("insights.html").render(
        view=view,
        query=query,
        visitor=visitor,
        chart=chart,
        duration_text=duration_text,
        max_weeks=MAX_WEEKS,
    )
