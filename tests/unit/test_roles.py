"""Connect's roles: their order and their words."""

from __future__ import annotations

import pytest

from bot.workflow.roles import DEFAULT_ROLE_LABEL, outranks, parse_roles, role_label


def test_labels() -> None:
    assert [role_label(r) for r in ("viewer", "publisher", "administrator")] == [
        "Viewer",
        "Publisher",
        "Administrator",
    ]
    assert role_label(None) == DEFAULT_ROLE_LABEL == "Connect's default role"
    assert role_label("<!channel> *owner*") == "a role the bot does not know"


@pytest.mark.parametrize(
    ("role", "other", "higher"),
    [
        ("publisher", "viewer", True),
        ("administrator", "publisher", True),
        ("viewer", "publisher", False),
        ("publisher", "publisher", False),
        ("viewer", None, False),
        ("publisher", None, True),
    ],
)
def test_outranks(role: str, other: str | None, higher: bool) -> None:
    assert outranks(role, other) is higher


def test_parse_roles() -> None:
    assert parse_roles(["publisher", " VIEWER ", "publisher"]) == ("viewer", "publisher")
    with pytest.raises(ValueError, match="unknown role"):
        parse_roles(["root"])
    with pytest.raises(ValueError, match="at least one"):
        parse_roles([" "])
