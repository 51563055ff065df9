"""The audit page's Jinja2 templates on their own: every value a person or the directory supplied
comes out as text (autoescape), a template never renders with a name missing (StrictUndefined),
and the templates ship with the package."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from datetime import UTC, datetime
from fnmatch import fnmatch
from pathlib import Path
from urllib.parse import parse_qs

import jinja2
import pytest

from bot.store.audit_queries import AuditFilter, AuditPage, AuditRecord, AuditStep
from bot.web.audit_page import TEMPLATES, AuditQuery, render_error, render_page
from tests.support.audit_html import Element, parse_html, row_cells

ROOT = Path(__file__).resolve().parents[2]
WHEN = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def hostile(field: str) -> str:
    """Markup, both quotes, an ampersand, a formula and a line break, named after its field so a
    value that lands in the wrong place is caught too."""
    return f'{field}<script>alert("{field}")</script>\'&amp; =1+1\n<b>{field}</b>'


Values = Callable[[str], str]


def record(value: Values) -> AuditRecord:
    return AuditRecord(
        id=value("id"),
        state=value("state"),
        requester_id=value("requester"),
        username=value("username"),
        full_name=value("full_name"),
        email=value("email"),
        justification=value("justification"),
        created_at=WHEN,
        decided_by=value("decided_by"),
        decided_at=WHEN,
        deny_reason=value("deny_reason"),
        connect_guid=value("guid"),
        kind=value("kind"),
        role_asked=value("role_asked"),
        role_granted=value("role_granted"),
        role_before=value("role_before"),
        steps=(
            AuditStep(action="create_account", status="done"),
            AuditStep(action="set_role", status="failed", error=value("step_error")),
        ),
    )


def render(value: Values) -> str:
    # Page 2 of 3 with a non-default page size: both pager links and the hidden per_page field.
    query = AuditQuery(states=("denied",), search=value("search"), page=2, per_page=1)
    page = AuditPage([record(value)], 3, 2, 1, AuditFilter(query.states, query.search))
    return render_page(page, query, visitor=value("visitor"))


def tags(document: Element) -> list[str]:
    return [element.tag for element in document.iter()]


def test_every_rendered_value_comes_out_as_text() -> None:
    html = render(hostile)
    document = parse_html(html)
    assert "<script" not in html and "<b>" not in html
    # The same elements as a page of harmless values: nothing a value held became markup.
    assert tags(document) == tags(parse_html(render(lambda field: f"plain-{field}")))

    assert document.find("header").find("strong").text == hostile("visitor")
    assert document.find("input", name="q").attrs["value"] == hostile("search")
    row = document.find("tr", data_request_id=hostile("id"))
    cells = row_cells(document, hostile("id"))
    when, state, person, requester, why, decision, account, access = cells
    assert when == "2026-03-02 09:30 UTC"
    # A state the page does not know is shown by name and gets no class of its own.
    badge = row.find("span", **{"class": "state"})
    assert state == badge.text == hostile("state").capitalize()
    assert person == hostile("username") + hostile("full_name") + hostile("email")
    assert requester == hostile("requester")
    # Exactly the text: the cell keeps line breaks (pre-wrap), so the template adds none.
    assert why == hostile("justification")
    assert decision == (
        hostile("decided_by") + "2026-03-02 09:30 UTC" + "Reason: " + hostile("deny_reason")
    )
    assert account == hostile("guid")
    # A kind the page does not know is shown by name; so are roles it does not know.
    assert access == (
        hostile("kind").capitalize()
        + "Role asked: "
        + hostile("role_asked")
        + "Role granted: "
        + hostile("role_granted")
        + "Set role failed: "
        + hostile("step_error")
    )

    # Clear, CSV, JSON, newer, older: relative, and carrying the search intact. The insights
    # link is relative too, and carries no filter (the insights count every request).
    hrefs = [str(element.attrs["href"]) for element in document.find_all("a")]
    assert hrefs.count("?view=insights") == 1
    clear, *links = [href for href in hrefs if href != "?view=insights"]
    assert clear == "?" and len(links) == 4
    for link in links:
        assert link.startswith("?")
        assert parse_qs(link.removeprefix("?"))["q"] == [hostile("search")]


def test_an_error_page_shows_its_title_and_message_as_text() -> None:
    title, message = hostile("title"), hostile("message")
    html = render_error(400, title, message)
    document = parse_html(html)
    assert "<script" not in html
    assert tags(document) == tags(parse_html(render_error(400, "Bad request", "plain")))
    assert document.find("title").text == f"400 {title}"
    assert document.find("h1").text == title
    assert document.find("p").text == message


@pytest.mark.parametrize(
    ("template", "variables", "missing"),
    [
        ("audit_page.html", {"page": AuditPage([], 0, 1, 50), "query": AuditQuery()}, "visitor"),
        ("error.html", {"status": 400, "title": "Bad request"}, "message"),
    ],
)
def test_a_template_does_not_render_with_a_variable_missing(
    template: str, variables: dict, missing: str
) -> None:
    with pytest.raises(jinja2.UndefinedError, match=f"'{missing}' is undefined"):
        TEMPLATES.get_template(template).render(**variables)


def test_the_templates_ship_with_the_package() -> None:
    """An installed (not editable) copy has only the package data pyproject.toml lists."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = pyproject["tool"]["setuptools"]["package-data"]["bot"]
    package = ROOT / "bot"
    templates = sorted((package / "web" / "templates").iterdir())
    assert templates, "no templates found"
    for path in templates:
        relative = path.relative_to(package).as_posix()
        assert any(fnmatch(relative, pattern) for pattern in patterns), relative
    assert sorted(TEMPLATES.list_templates()) == [path.name for path in templates]


def test_no_template_turns_escaping_off() -> None:
    """Autoescape is the page's only defence against markup in values: a template that marks a
    value safe or switches escaping off would bring back the hand-escaping this replaced."""
    for name in TEMPLATES.list_templates():
        source = (ROOT / "bot" / "web" / "templates" / name).read_text(encoding="utf-8")
        squeezed = "".join(source.split())
        assert "|safe" not in squeezed, name
        assert "{%autoescape" not in squeezed and "{%-autoescape" not in squeezed, name
        assert "Markup" not in source, name
