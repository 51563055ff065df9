"""The audit page's parts that need no I/O: reading the query string, and rendering a page of
requests as HTML, JSON or CSV.

HTML comes from the Jinja2 templates in templates/ (no JavaScript, no external assets), rendered
with autoescape on, so every value that came from a person or the directory is escaped; every
link is a relative query (`?page=2`) so the page works under whatever path prefix Connect serves
it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeGuard
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader, StrictUndefined
from starlette.datastructures import QueryParams

from bot.store.audit_queries import AuditFilter, AuditPage, AuditRecord, AuditStep
from bot.workflow.models import filed_by_bot
from bot.workflow.roles import ROLES, role_label
from bot.workflow.states import RequestState

Format = Literal["html", "json", "csv"]
FORMATS: tuple[Format, ...] = ("html", "json", "csv")


def is_format(value: str) -> TypeGuard[Format]:
    return value in FORMATS


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
    RequestState.INCOMPLETE.value: "Incomplete",
    RequestState.CLOSED.value: "Closed incomplete",
}
KIND_LABELS: dict[str, str] = {
    "new_account": "New account",
    "role_change": "Role change",
    "lock": "Lock account",
    "unlock": "Unlock account",
    "new_group": "New group",
    "join_groups": "Join groups",
}
# Kinds that ask for no role (the account keeps its own, or there is no account).
NO_ROLE_KINDS = ("lock", "unlock", "new_group", "join_groups")


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


View = Literal["requests", "insights"]
VIEWS: tuple[View, ...] = ("requests", "insights")


def parse_view(params: QueryParams) -> View:
    """Which view of the audit page is asked for: the list of requests unless `view=insights`."""
    values = params.getlist("view")
    if len(values) > 1:
        raise BadQuery("give view at most once")
    wanted = values[0].strip().lower() if values else ""
    if not wanted or wanted == "requests":
        return "requests"
    if wanted == "insights":
        return "insights"
    raise BadQuery(f"unknown view {_quoted(wanted)}; use one of: {', '.join(VIEWS)}")


def refuse_control_characters(params: QueryParams) -> None:
    for name, value in params.multi_items():
        # No filter needs them, and PostgreSQL refuses NUL in text outright: a 400 on every
        # database rather than a 503 on one.
        if _has_control_characters(name) or _has_control_characters(value):
            raise BadQuery(f"{_quoted(name)} must not contain control characters")


def parse_query(params: QueryParams, accept: str | None) -> AuditQuery:
    """Read and bound the query string, or raise BadQuery naming the parameter."""
    refuse_control_characters(params)
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
    page = bounded_int(params.get("page"), "page", 1, MAX_PAGE, default=1)
    per_page = bounded_int(
        params.get("per_page"), "per_page", 1, MAX_PER_PAGE, default=DEFAULT_PER_PAGE
    )
    fmt_param = params.get("format")
    if fmt_param is None or fmt_param == "":
        fmt = negotiate(accept)
    elif is_format(wanted := fmt_param.lower()):
        fmt = wanted
    else:
        raise BadQuery(f"format must be one of: {', '.join(FORMATS)}")
    return AuditQuery(states=tuple(states), search=search, page=page, per_page=per_page, format=fmt)


def _has_control_characters(text: str) -> bool:
    return any(ord(char) < 0x20 or 0x7F <= ord(char) < 0xA0 for char in text)


def bounded_int(raw: str | None, name: str, low: int, high: int, *, default: int) -> int:
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
        "kind": record.kind,
        # null: Connect's default role (no role was chosen).
        "role_asked": record.role_asked,
        "role_granted": record.role_granted,
        "role_before": record.role_before,
        "steps": [step_json(step) for step in record.steps],
        # Every approval given (several where APPROVALS_REQUIRED asks for them).
        "approvals": [
            {
                "approver": approval.approver_id,
                "role": approval.role,
                "note": approval.note,
                "approved_at": _iso(approval.approved_at),
                "round": approval.round,
            }
            for approval in record.approvals
        ],
        # A group request: the directory group (null otherwise); the groups an account joins.
        "group": record.group_name,
        "groups": [{"guid": group.guid, "name": group.name} for group in record.groups],
    }


def step_json(step: AuditStep) -> dict[str, Any]:
    return {
        "action": step.action,
        "status": step.status,
        "error": step.error,
        "note": step.note,
        # Written as Python's isoformat; shown as the page's other times are (UTC as "Z").
        "done_at": step.done_at.replace("+00:00", "Z") if step.done_at else None,
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
    # Added with roles, after the columns exports had before (readers by position keep working).
    "kind",
    "role_asked",
    "role_granted",
    "role_before",
    # Added with approvals as rows: "approver:role" for each, oldest first, ";"-separated.
    "approvals",
    # Added with groups, after the columns exports had before.
    "group_name",
    "groups",
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
        record.kind,
        record.role_asked,
        record.role_granted,
        record.role_before,
        "; ".join(f"{a.approver_id}:{a.role or 'default'}" for a in record.approvals),
        record.group_name,
        "; ".join(group.name for group in record.groups),
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


def state_label(state: str) -> str:
    return STATE_LABELS.get(state) or state.replace("_", " ").capitalize()


def requester_label(requester_id: str) -> str:
    """Who asked: a Slack id, or (a request the bot filed itself) what made it ask."""
    return "the bot: deactivated in Slack" if filed_by_bot(requester_id) else requester_id


def kind_label(kind: str) -> str:
    return KIND_LABELS.get(kind) or kind.replace("_", " ").capitalize()


# The templates live in the package (bot/web/templates, listed in pyproject's package-data), so an
# installed copy finds them as well as a checkout does. Autoescape is on for every template: a
# value from a person or the directory can only ever be text, never markup, unless a template
# marks it safe (none does). StrictUndefined makes a misspelt or missing name an error instead of
# an empty cell that hides the mistake.
TEMPLATES = Environment(
    loader=PackageLoader("bot.web", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    # Block tags on lines of their own leave no blank lines or indentation behind.
    trim_blocks=True,
    lstrip_blocks=True,
)
TEMPLATES.filters["iso"] = _iso
TEMPLATES.filters["state_label"] = state_label
TEMPLATES.filters["kind_label"] = kind_label
TEMPLATES.filters["requester_label"] = requester_label
TEMPLATES.globals["NO_ROLE_KINDS"] = NO_ROLE_KINDS


def _role_text(role: str | None) -> str:
    """A role's label; one the bot does not know is shown as recorded (the page escapes it):
    the audit says what really happened."""
    return role_label(role) if role is None or role in ROLES else role


TEMPLATES.filters["role_label"] = _role_text
TEMPLATES.globals.update(
    known_states=known_states(),
    default_per_page=DEFAULT_PER_PAGE,
    max_search_chars=MAX_SEARCH_CHARS,
)


def render_page(page: AuditPage, query: AuditQuery, *, visitor: str) -> str:
    return TEMPLATES.get_template("audit_page.html").render(page=page, query=query, visitor=visitor)


def render_error(status: int, title: str, message: str) -> str:
    return TEMPLATES.get_template("error.html").render(status=status, title=title, message=message)
