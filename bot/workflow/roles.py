"""Connect's roles, in rank order, and how people read them."""

from __future__ import annotations

ROLES: tuple[str, ...] = ("viewer", "publisher", "administrator")

_LABELS = {"viewer": "Viewer", "publisher": "Publisher", "administrator": "Administrator"}


def role_label(role: str | None) -> str:
    """A role as people read it; None is the role Connect gives by default (never assumed)."""
    if role is None:
        return "Connect's default role"
    return _LABELS.get(role, role)


def outranks(a: str, b: str) -> bool:
    """Whether role `a` is above role `b` (unknown roles rank below every known one)."""
    return _rank(a) > _rank(b)


def _rank(role: str) -> int:
    return ROLES.index(role) if role in ROLES else -1


def parse_roles(text: str) -> tuple[str, ...]:
    """Comma-separated role names, in rank order without repeats; ValueError for an unknown one
    or none at all."""
    wanted = {part.strip().lower() for part in text.split(",") if part.strip()}
    unknown = sorted(wanted - set(ROLES))
    if unknown:
        raise ValueError(f"unknown role(s) {', '.join(unknown)}: use {', '.join(ROLES)}")
    if not wanted:
        raise ValueError(f"names no role: use {', '.join(ROLES)}")
    return tuple(role for role in ROLES if role in wanted)
