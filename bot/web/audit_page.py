"""The audit page's parts that need no I/O: reading the query string, and rendering a page of
requests as HTML, JSON or CSV.

HTML is built from escaped strings (no template engine, no JavaScript, no external assets): every
value that came from a person or the directory goes through `html.escape`, and every link is a
relative query (`?page=2`) so the page works under whatever path prefix Connect serves it.
"""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlencode

from starlette.datastructures import QueryParams

from bot.store.audit_queries import AuditFilter, AuditPage, AuditRecord
from bot.workflow.states import RequestState

Format = Literal["html", "json", "csv"]
FORMATS: tuple[Format, ...] = ("html", "json", "csv")
DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 200
# Far beyond any real history at any page size, and small enough that page * per_page stays a
# modest integer on every database (a 40-digit page would otherwise reach the SQL OFFSET).
MAX_PAGE = 100_000
MAX_SEARCH_CHARS = 200
_SINGLE_VALUED = ("q", "page", "per_page", "format")

_MEDIA_TYPES: dict[str, Format] = {
    "text/html": "html",
    "application/xhtml+xml": "html",
    "application/json": "json",
    "text/csv": "csv",
}

STATE_LABELS: dict[str, str] = {
    RequestState.PENDING.value: "Pending",
    RequestState.PROVISIONING.value: "Provisioning",
    RequestState.APPROVED.value: "Approved",
    RequestState.ALREADY_EXISTS.value: "Already had an account",
    RequestState.DENIED.value: "Denied",
    RequestState.EXPIRED.value: "Expired",
    RequestState.CANCELLED.value: "Cancelled",
}


class BadQuery(ValueError):
    """A query parameter the page cannot honour; the message is shown as is (400)."""


@dataclass(frozen=True, slots=True)
class AuditQuery:
    states: tuple[str, ...] = ()
    search: str = ""
    page: int = 1
    per_page: int = DEFAULT_PER_PAGE
    format: Format = "html"

    @property
    def filter(self) -> AuditFilter:
        return AuditFilter(states=self.states, search=self.search)

    def link(self, **changes: Any) -> str:
        """A relative link to this view with some parameters changed (defaults left out)."""
        values = {
            "state": list(self.states),
            "q": self.search,
            "page": self.page,
            "per_page": self.per_page,
            "format": self.format,
            **changes,
        }
        pairs: list[tuple[str, str]] = [("state", state) for state in values["state"]]
        if values["q"]:
            pairs.append(("q", str(values["q"])))
        if values["page"] != 1:
            pairs.append(("page", str(values["page"])))
        if values["per_page"] != DEFAULT_PER_PAGE:
            pairs.append(("per_page", str(values["per_page"])))
        if values["format"] != "html":
            pairs.append(("format", str(values["format"])))
        return "?" + urlencode(pairs)


def known_states() -> tuple[str, ...]:
    return tuple(state.value for state in RequestState)


def negotiate(accept: str | None) -> Format:
    """The best of HTML, JSON and CSV for an Accept header; HTML when nothing is said."""
    candidates: list[tuple[float, int, Format]] = []
    for position, item in enumerate((accept or "").split(",")):
        media, _, params = item.strip().partition(";")
        fmt = _MEDIA_TYPES.get(media.strip().lower())
        if fmt is None:
            continue
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q > 0:
            # Ties go to the earlier entry, the order clients list their preferences in.
            candidates.append((q, -position, fmt))
    return max(candidates)[2] if candidates else "html"


def parse_query(params: QueryParams, accept: str | None) -> AuditQuery:
    """Read and bound the query string, or raise BadQuery naming the parameter."""
    for name, value in params.multi_items():
        # No filter needs them, and PostgreSQL refuses NUL in text outright: a 400 on every
        # database rather than a 503 on one.
        if _has_control_characters(name) or _has_control_characters(value):
            raise BadQuery(f"{_quoted(name)} must not contain control characters")
    for name in _SINGLE_VALUED:
        if len(params.getlist(name)) > 1:
            raise BadQuery(f"give {name} at most once")
    states: list[str] = []
    for value in params.getlist("state"):
        for part in value.split(","):
            part = part.strip().lower()
            if not part:
                continue  # the form's "any state" sends an empty value
            if part not in known_states():
                raise BadQuery(
                    f"unknown state {_quoted(part)}; use one of: {', '.join(known_states())}"
                )
            if part not in states:
                states.append(part)
    search = params.get("q", "").strip()
    if len(search) > MAX_SEARCH_CHARS:
        raise BadQuery(f"the search text is limited to {MAX_SEARCH_CHARS} characters")
    page = _bounded_int(params.get("page"), "page", 1, MAX_PAGE, default=1)
    per_page = _bounded_int(
        params.get("per_page"), "per_page", 1, MAX_PER_PAGE, default=DEFAULT_PER_PAGE
    )
    fmt_param = params.get("format")
    if fmt_param is None or fmt_param == "":
        fmt = negotiate(accept)
    elif fmt_param.lower() in FORMATS:
        fmt = fmt_param.lower()  # type: ignore[assignment]
    else:
        raise BadQuery(f"format must be one of: {', '.join(FORMATS)}")
    return AuditQuery(states=tuple(states), search=search, page=page, per_page=per_page, format=fmt)


def _has_control_characters(text: str) -> bool:
    return any(ord(char) < 0x20 or 0x7F <= ord(char) < 0xA0 for char in text)


def _bounded_int(raw: str | None, name: str, low: int, high: int, *, default: int) -> int:
    if raw is None or raw == "":
        return default
    # Digits only: int() would also take "+3", " 3" and "3_000".
    if not raw.isascii() or not raw.isdigit() or len(raw) > len(str(high)):
        raise BadQuery(f"{name} must be a whole number from {low} to {high}")
    value = int(raw)
    if not low <= value <= high:
        raise BadQuery(f"{name} must be a whole number from {low} to {high}")
    return value


def _quoted(value: str, limit: int = 40) -> str:
    shown = value if len(value) <= limit else value[: limit - 1] + "…"
    return repr(shown)


# -- JSON ----------------------------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def record_json(record: AuditRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "state": record.state,
        "requester": record.requester_id,
        "person": {
            "username": record.username,
            "full_name": record.full_name,
            "email": record.email,
        },
        "justification": record.justification,
        "created_at": _iso(record.created_at),
        "decided_by": record.decided_by,
        "decided_at": _iso(record.decided_at),
        "deny_reason": record.deny_reason,
        "connect_guid": record.connect_guid,
    }


def page_json(page: AuditPage) -> dict[str, Any]:
    return {
        "requests": [record_json(record) for record in page.records],
        "total": page.total,
        "page": page.page,
        "per_page": page.per_page,
        "pages": page.pages,
        "filters": {"state": list(page.filter.states), "q": page.filter.search},
    }


# -- CSV -----------------------------------------------------------------------------------------

CSV_COLUMNS = (
    "id",
    "created_at",
    "state",
    "requester",
    "username",
    "full_name",
    "email",
    "justification",
    "decided_by",
    "decided_at",
    "deny_reason",
    "connect_guid",
)
# A cell starting with one of these is run as a formula by Excel, LibreOffice or Google Sheets
# (tab and CR because some importers strip them and then see the next character; the full-width
# forms because some locales' spreadsheets treat them like the ASCII ones).
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")
# Excel reads a CSV without a byte order mark as the local code page and garbles accents.
CSV_BOM = "\ufeff"


def neutralise_cell(value: str | None) -> str:
    """A value a spreadsheet shows as text: a leading formula character gets a `'` before it."""
    if value is None:
        return ""
    return "'" + value if value.startswith(FORMULA_TRIGGERS) else value


def csv_row(record: AuditRecord) -> list[str]:
    raw = (
        record.id,
        _iso(record.created_at),
        record.state,
        record.requester_id,
        record.username,
        record.full_name,
        record.email,
        record.justification,
        record.decided_by,
        _iso(record.decided_at),
        record.deny_reason,
        record.connect_guid,
    )
    return [neutralise_cell(value) for value in raw]


def _csv_text(cells: Iterable[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(cells)
    return buffer.getvalue()


def csv_header() -> str:
    """The first line of the export, with the byte order mark spreadsheets look for."""
    return CSV_BOM + _csv_text(CSV_COLUMNS)


def csv_line(record: AuditRecord) -> str:
    return _csv_text(csv_row(record))


def csv_filename(now: datetime) -> str:
    return f"connect-user-requests-{now.strftime('%Y%m%d-%H%M%S')}.csv"


# -- HTML ----------------------------------------------------------------------------------------

_CSS = """
:root { --fg: #1c2330; --muted: #5d6776; --line: #dde2e8; --bg: #ffffff; --soft: #f5f7fa;
  --accent: #1f5fbf; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--fg); background: var(--bg);
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; }
header { display: flex; flex-wrap: wrap; gap: .5rem 2rem; justify-content: space-between;
  align-items: baseline; padding: 1rem 1.5rem; border-bottom: 1px solid var(--line); }
header h1 { font-size: 1.25rem; margin: 0; }
main { padding: 1rem 1.5rem 2rem; }
a { color: var(--accent); }
.muted { color: var(--muted); }
form.filters { display: flex; flex-wrap: wrap; gap: .75rem 1.25rem; align-items: flex-end;
  padding: .75rem 1rem; background: var(--soft); border: 1px solid var(--line);
  border-radius: 8px; margin-bottom: 1rem; }
fieldset { border: 0; margin: 0; padding: 0; display: flex; flex-wrap: wrap; gap: .25rem .75rem; }
legend, label.search span { display: block; font-size: .8rem; font-weight: 600;
  color: var(--muted); margin-bottom: .25rem; }
fieldset label { white-space: nowrap; }
input[type=search] { font: inherit; padding: .3rem .5rem; width: 22rem; max-width: 100%;
  border: 1px solid var(--line); border-radius: 6px; }
button { font: inherit; padding: .35rem .9rem; border-radius: 6px; border: 1px solid var(--accent);
  background: var(--accent); color: #fff; cursor: pointer; }
.summary { display: flex; flex-wrap: wrap; gap: .5rem 1.5rem; margin: .5rem 0 .75rem; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; vertical-align: top; padding: .5rem .6rem;
  border-bottom: 1px solid var(--line); }
th { font-size: .75rem; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); }
tbody tr:hover { background: var(--soft); }
td.when { white-space: nowrap; }
td.why { min-width: 14rem; max-width: 28rem; white-space: pre-wrap; overflow-wrap: anywhere; }
.actions { display: flex; gap: .75rem; align-items: center; }
code { font: .85em/1.3 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.state { display: inline-block; padding: .1rem .55rem; border-radius: 999px; font-size: .8rem;
  font-weight: 600; background: #eceff3; color: #3b4452; white-space: nowrap; }
.state-pending { background: #fff4d6; color: #7a5200; }
.state-provisioning { background: #e4edff; color: #1d4ea3; }
.state-approved { background: #e1f5e6; color: #17652f; }
.state-already_exists { background: #e8f1f8; color: #29506e; }
.state-denied { background: #fde6e6; color: #a12626; }
.reason { margin-top: .25rem; }
nav.pages { display: flex; gap: 1rem; align-items: center; margin-top: 1rem; }
.empty { padding: 2rem; text-align: center; color: var(--muted); }
"""


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _time(value: datetime | None) -> str:
    if value is None:
        return ""
    return (
        f'<time datetime="{_e(_iso(value))}">{_e(value.strftime("%Y-%m-%d %H:%M"))}'
        ' <span class="muted">UTC</span></time>'
    )


def state_label(state: str) -> str:
    return STATE_LABELS.get(state) or state.replace("_", " ").capitalize()


def _state_badge(state: str) -> str:
    # The class name is built only from known states: an unexpected value gets no class at all.
    css = f" state-{state}" if state in known_states() else ""
    label = state_label(state)
    return f'<span class="state{css}">{_e(label)}</span>'


def _row(record: AuditRecord) -> str:
    person = (
        f"<strong>{_e(record.username)}</strong>"
        + (f"<br>{_e(record.full_name)}" if record.full_name else "")
        + (f'<br><span class="muted">{_e(record.email)}</span>' if record.email else "")
    )
    decision = ""
    if record.decided_by:
        decision = f"<code>{_e(record.decided_by)}</code><br>{_time(record.decided_at)}"
    if record.deny_reason:
        decision += f'<div class="reason"><em>Reason:</em> {_e(record.deny_reason)}</div>'
    account = f"<code>{_e(record.connect_guid)}</code>" if record.connect_guid else ""
    return (
        f'<tr data-request-id="{_e(record.id)}">'
        f'<td class="when">{_time(record.created_at)}</td>'
        f"<td>{_state_badge(record.state)}</td>"
        f"<td>{person}</td>"
        f"<td><code>{_e(record.requester_id)}</code></td>"
        f'<td class="why">{_e(record.justification)}</td>'
        f"<td>{decision}</td>"
        f"<td>{account}</td>"
        "</tr>"
    )


def _filters_form(query: AuditQuery) -> str:
    boxes = "".join(
        f'<label><input type="checkbox" name="state" value="{_e(state)}"'
        f"{' checked' if state in query.states else ''}> {_e(state_label(state))}</label>"
        for state in known_states()
    )
    per_page = (
        f'<input type="hidden" name="per_page" value="{query.per_page}">'
        if query.per_page != DEFAULT_PER_PAGE
        else ""
    )
    # No action attribute: the form submits to the page's own URL, whatever prefix it has.
    return (
        '<form class="filters" method="get" role="search">'
        f"<fieldset><legend>State</legend>{boxes}</fieldset>"
        '<label class="search"><span>Search</span>'
        f'<input type="search" name="q" value="{_e(query.search)}" '
        f'maxlength="{MAX_SEARCH_CHARS}" placeholder="username, name, email or Slack ID">'
        "</label>"
        f"{per_page}"
        '<span class="actions"><button type="submit">Filter</button><a href="?">Clear</a></span>'
        "</form>"
    )


def _pager(page: AuditPage, query: AuditQuery) -> str:
    if page.pages <= 1:
        return ""
    newer = (
        f'<a rel="prev" href="{_e(query.link(page=page.page - 1))}">← Newer</a>'
        if page.page > 1
        else ""
    )
    older = (
        f'<a rel="next" href="{_e(query.link(page=page.page + 1))}">Older →</a>'
        if page.page < page.pages
        else ""
    )
    return (
        f'<nav class="pages" aria-label="Pages">{newer}'
        f'<span class="muted">Page {page.page} of {page.pages}</span>{older}</nav>'
    )


def render_page(page: AuditPage, query: AuditQuery, *, visitor: str) -> str:
    noun = "request" if page.total == 1 else "requests"
    if page.records:
        body = (
            '<div class="table-wrap"><table><thead><tr>'
            "<th>Requested</th><th>State</th><th>Person</th><th>Requested by</th>"
            "<th>Justification</th><th>Decision</th><th>Connect account</th>"
            "</tr></thead><tbody>"
            + "".join(_row(record) for record in page.records)
            + "</tbody></table></div>"
        )
    elif page.total and page.page > page.pages:
        body = (
            f'<p class="empty">There is no page {page.page}. '
            f'<a href="{_e(query.link(page=1))}">Back to the first page</a></p>'
        )
    else:
        body = '<p class="empty">No requests match these filters.</p>'
    downloads = (
        f'<a href="{_e(query.link(page=1, format="csv"))}">Download CSV</a>'
        f'<a href="{_e(query.link(format="json"))}">JSON</a>'
    )
    return (
        "<!doctype html>"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>Account requests · connect-user-bot</title>"
        f"<style>{_CSS}</style></head><body>"
        "<header><h1>Posit Connect account requests</h1>"
        f'<span class="muted">Signed in as <strong>{_e(visitor)}</strong></span></header>'
        f"<main>{_filters_form(query)}"
        f'<div class="summary"><span id="total">{page.total} {noun}</span>{downloads}</div>'
        f"{body}{_pager(page, query)}</main></body></html>"
    )


def render_error(status: int, title: str, message: str) -> str:
    return (
        "<!doctype html>"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{status} {_e(title)}</title><style>{_CSS}</style></head><body>"
        f"<header><h1>{_e(title)}</h1></header>"
        f"<main><p>{_e(message)}</p></main></body></html>"
    )
