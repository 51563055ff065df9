"""Connect's error codes in plain words: what happened, whether trying again helps, who must act.

The one table the bot reads a refusal from (its texts are the bot's own; Connect's change between
versions, so only the code is matched). Codes from Connect 2023.09's published error table; a code
not listed here is shown to the approver with Connect's own message, and logged.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.workflow.ports import DirectoryProblem


@dataclass(frozen=True, slots=True)
class CodeMeaning:
    what: str  # what happened, a sentence without its full stop
    act: str  # who must do what, a whole sentence ("" when nobody needs to)
    retry: bool  # whether trying again, unchanged, can help
    kind: DirectoryProblem = DirectoryProblem.OTHER

    def explain(self, code: int) -> str:
        """The sentence an approver reads on the card."""
        parts = [f"{self.what} (Connect code {code})."]
        if self.act:
            parts.append(self.act)
        if self.retry:
            parts.append("Trying again may work.")
        return " ".join(parts)


_ADMIN = "A Connect administrator must"
_BOT_ADMIN = "The bot's administrator must"
_KEY_PERMISSION = CodeMeaning(
    "The bot's Connect API key lacks the permission for this",
    f"{_BOT_ADMIN} give it a key of a publisher or administrator (connect-user-bot check "
    "shows whose key it is).",
    retry=False,
    kind=DirectoryProblem.NOT_PERMITTED,
)

CODES: dict[int, CodeMeaning] = {
    1: CodeMeaning(
        "Connect failed on its side",
        "If it keeps happening, a Connect administrator should look at Connect's logs.",
        retry=True,
    ),
    4: CodeMeaning(
        "Connect says the object the bot asked about does not exist (any more)",
        "",
        retry=False,
    ),
    7: CodeMeaning(
        "Connect does not permit this username",
        f"{_ADMIN} decide whether the account may be created with another username.",
        retry=False,
        kind=DirectoryProblem.USERNAME_REFUSED,
    ),
    8: CodeMeaning(
        "The username is already in use in Connect (usernames are case sensitive)",
        "",
        retry=False,
        kind=DirectoryProblem.USERNAME_TAKEN,
    ),
    9: CodeMeaning("Connect could not find that user", "", retry=False),
    10: CodeMeaning(
        "The bot's Connect API key may not change a group its owner does not own: that needs "
        "an administrator's key",
        f"{_BOT_ADMIN} give the bot an administrator's key, or the member is added in Connect.",
        retry=False,
        kind=DirectoryProblem.NOT_PERMITTED,
    ),
    15: CodeMeaning(
        "A group with that name already exists in Connect",
        "",
        retry=False,
        kind=DirectoryProblem.GROUP_EXISTS,
    ),
    16: CodeMeaning(
        "The person is already a member of that group",
        "",
        retry=False,
        kind=DirectoryProblem.ALREADY_MEMBER,
    ),
    18: CodeMeaning(
        "The item the bot asked to change does not exist (any more) in Connect", "", retry=False
    ),
    19: _KEY_PERMISSION,
    20: _KEY_PERMISSION,
    21: _KEY_PERMISSION,
    22: _KEY_PERMISSION,
    23: CodeMeaning(
        "The bot's Connect API key may not give this role: role changes need an "
        "administrator's key",
        f"{_BOT_ADMIN} give the bot an administrator's key, or the role is set in Connect.",
        retry=False,
        kind=DirectoryProblem.NOT_PERMITTED,
    ),
    24: CodeMeaning(
        "Connect rejected the bot's API key",
        f"{_BOT_ADMIN} set a valid CONNECT_API_KEY.",
        retry=False,
        kind=DirectoryProblem.NOT_PERMITTED,
    ),
    49: CodeMeaning(
        "The bot's Connect API key may not lock or unlock accounts: that needs an "
        "administrator's key",
        f"{_BOT_ADMIN} give the bot an administrator's key, or the account is locked in Connect.",
        retry=False,
        kind=DirectoryProblem.NOT_PERMITTED,
    ),
    50: CodeMeaning(
        "This account is locked in Connect",
        f"{_ADMIN} unlock it.",
        retry=False,
        kind=DirectoryProblem.LOCKED,
    ),
    61: CodeMeaning(
        "Connect will not change the role of its only remaining administrator",
        "Make someone else an administrator first.",
        retry=False,
    ),
    64: CodeMeaning(
        "Connect's licence has no free seats (every seat is in use), so Connect refused",
        f"{_ADMIN} free a seat (lock an unused account) or extend the licence; this request "
        "stays open and can be approved again once a seat is free.",
        retry=False,
        kind=DirectoryProblem.LICENCE_FULL,
    ),
    76: CodeMeaning(
        "An account with the same unique ID already exists in Connect",
        f"{_ADMIN} look for that person's existing account.",
        retry=False,
    ),
    83: CodeMeaning(
        "Too many people match that search",
        "Type a longer prefix.",
        retry=False,
        kind=DirectoryProblem.TOO_MANY_RESULTS,
    ),
    107: CodeMeaning(
        "Connect's policy prohibits this username",
        f"{_ADMIN} decide whether the account may be created.",
        retry=False,
        kind=DirectoryProblem.USERNAME_REFUSED,
    ),
    112: CodeMeaning("Connect does not recognise that role", "", retry=False),
    119: CodeMeaning(
        "Connect's login provider cannot create accounts from the directory",
        f"{_ADMIN} check Connect's authentication settings.",
        retry=False,
        kind=DirectoryProblem.PROVIDER_CANNOT,
    ),
    120: CodeMeaning(
        "Connect's login provider creates accounts from the directory only",
        f"{_ADMIN} check Connect's authentication settings.",
        retry=False,
        kind=DirectoryProblem.PROVIDER_CANNOT,
    ),
    121: CodeMeaning(
        "Connect could not read the bot's request (a bug in the bot)",
        "Please report it to the bot's maintainers.",
        retry=False,
    ),
    127: CodeMeaning(
        "Connect no longer accepts this person's directory ticket",
        "Search for the person again.",
        retry=False,
        kind=DirectoryProblem.STALE_TICKET,
    ),
    131: CodeMeaning(
        "A group with the same unique ID already exists in Connect",
        "",
        retry=False,
        kind=DirectoryProblem.GROUP_EXISTS,
    ),
    132: CodeMeaning(
        "Connect's login provider cannot do this (it has no directory search, for one)",
        f"{_ADMIN} check Connect's authentication settings.",
        retry=False,
        kind=DirectoryProblem.PROVIDER_CANNOT,
    ),
    153: CodeMeaning("Connect could not find that group", "", retry=False),
}

# Failures without a code: Connect did not answer, or answered with an error of its own.
TIMEOUT = CodeMeaning("Connect did not answer in time", "", retry=True)
UNREACHABLE = CodeMeaning("Connect could not be reached", "", retry=True)
RATE_LIMITED = CodeMeaning("Connect asked the bot to slow down (429)", "", retry=True)


def server_error(status: int) -> CodeMeaning:
    return CodeMeaning(f"Connect failed on its side ({status})", "", retry=True)


def meaning(code: int | None) -> CodeMeaning | None:
    return None if code is None else CODES.get(code)
