"""Connect's user roles, in the order of what they allow, and how people read them."""

from __future__ import annotations

from collections.abc import Iterable

# Lowest first: each role can do what the ones before it can.
ROLES = ("viewer", "publisher", "administrator")
DEFAULT_ROLE_LABEL = "Connect's default role"
UNKNOWN_ROLE_LABEL = "a role the bot does not know"
_LABELS = {"viewer": "Viewer", "publisher": "Publisher", "administrator": "Administrator"}


def role_label(role: str | None) -> str:
    """ "Publisher"; None (no role was chosen) reads as Connect's default role, whichever that is:
    the server's default is not exposed, so it is never guessed."""
    if role is None:
        return DEFAULT_ROLE_LABEL
    # Never the raw value: a role read from Connect or a row is not text to show as it is.
    return _LABELS.get(role, UNKNOWN_ROLE_LABEL)


def is_role(value: object) -> bool:
    return isinstance(value, str) and value in ROLES


def outranks(role: str, other: str | None) -> bool:
    """Whether `role` allows more than `other` (None: Connect's default, taken as the lowest a
    request can ask for, so any chosen role above viewer raises it)."""
    if other is None:
        return ROLES.index(role) > 0
    return ROLES.index(role) > ROLES.index(other)


def parse_roles(values: Iterable[str]) -> tuple[str, ...]:
    """Roles named in configuration, lowest first, each once; raises ValueError naming an unknown
    one."""
    chosen = {value.strip().lower() for value in values if value.strip()}
    unknown = sorted(chosen - set(ROLES))
    if unknown:
        raise ValueError(
            f"unknown role(s) {', '.join(unknown)}: use {', '.join(ROLES)} (comma-separated)"
        )
    if not chosen:
        raise ValueError(f"name at least one role of {', '.join(ROLES)}")
    return tuple(role for role in ROLES if role in chosen)
