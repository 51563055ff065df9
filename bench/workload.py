"""What the benchmarks send: a synthetic directory, search prefixes, and signed Slack requests."""

from __future__ import annotations

import bisect
import itertools
import random
import secrets
import string
from collections.abc import Iterator
from dataclasses import dataclass

from bot.slack.ui.ids import ROLE_BLOCK, ROLE_INPUT, VIEW_APPROVE
from bot.slack.ui.values import ApprovalForm, encode_approval_metadata
from tests.support.slack_requests import (
    block_actions_body,
    slash_command_body,
    view_submission_body,
)

SIGNING_SECRET = "bench-signing-secret-0123456789abcdef"
BOT_TOKEN = "xoxb-bench-bot-token-0000"
APPROVER_CHANNEL = "CAPPROVERS"
APPROVERS = ("UAPPROVER1", "UAPPROVER2", "UAPPROVER3")
REQUESTER = "UREQUESTER"
GUEST = "UGUEST0001"
ACTION_APPROVE = "approve_request"  # bot.slack.ui.ids.ACTION_APPROVE


def _words(text: str) -> list[str]:
    return text.split()


FIRST_NAMES = _words(
    """
Ada Alan Alice Amara Anders Ana Arjun Astrid Beatriz Bjorn Camille Carlos Chen Chiara Dara David
Deepa Diego Elena Emil Erin Fatima Felix Freya Gabriel Hana Hugo Ines Ingrid Ivan Jada Jamal Jorge
Julia Julie Kai Kamala Kenji Lars Leila Liam Lucia Malik Maria Mateo Mei Mira Nadia Nikhil Nora Omar
Oskar Paula Priya Rafael Rosa Sami Sofia Tariq Yara
"""
)
LAST_NAMES = _words(
    """
Abara Andersen Baker Bauer Becker Bianchi Brown Campbell Costa Cruz Dubois Eriksson Fischer Garcia
Gomez Hansen Harris Ito Jansen Johansson Jones Kim Klein Kowalski Larsen Lee Lopez Martin Meyer
Moreau Muller Nakamura Nguyen Novak Okafor Olsen Park Patel Perez Petrov Rossi Santos Schmidt
Silva Singh
Smith Sousa Suzuki Tanaka Taylor Thomas Virtanen Wagner Walker Weber Williams Wilson Wong Yilmaz
Zhang
"""
)


@dataclass(frozen=True)
class Person:
    username: str
    first: str
    last: str


def directory(size: int = 1000, seed: int = 7) -> list[Person]:
    rng = random.Random(seed)
    people: list[Person] = []
    taken: set[str] = set()
    while len(people) < size:
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        base = (first[0] + last).lower()
        username = base
        for n in itertools.count(2):
            if username not in taken:
                break
            username = f"{base}{n}"
        taken.add(username)
        people.append(Person(username, first, last))
    return people


def matches(people: list[Person], prefix: str) -> int:
    p = prefix.casefold()
    return sum(
        1
        for x in people
        if x.username.casefold().startswith(p)
        or x.first.casefold().startswith(p)
        or x.last.casefold().startswith(p)
    )


def _prefixes_of(people: list[Person], lengths: range) -> set[str]:
    out: set[str] = set()
    for x in people:
        for name in (x.username, x.first.lower(), x.last.lower()):
            for n in lengths:
                if len(name) >= n:
                    out.add(name[:n])
    return out


def typical_prefixes(people: list[Person], seed: int = 11) -> list[tuple[str, int]]:
    """3-4 letter prefixes matching 2 to 40 people, as (prefix, matches), in a seeded order."""
    pool = sorted(_prefixes_of(people, range(3, 5)))
    counted = [(p, matches(people, p)) for p in pool]
    chosen = [(p, n) for p, n in counted if 2 <= n <= 40]
    random.Random(seed).shuffle(chosen)
    return chosen


def many_prefixes(people: list[Person], extra_misses: int = 2000, seed: int = 13) -> list[str]:
    """Every 2-7 letter prefix of every name, plus random strings that match nobody."""
    rng = random.Random(seed)
    out = _prefixes_of(people, range(2, 8))
    while extra_misses > 0:
        word = "".join(rng.choice(string.ascii_lowercase) for _ in range(6))
        if word not in out:
            out.add(word)
            extra_misses -= 1
    ordered = sorted(out)
    rng.shuffle(ordered)
    return ordered


class Zipf:
    """Ranks 0..n-1 with P(k) proportional to 1/(k+1)**s."""

    def __init__(self, n: int, s: float, seed: int) -> None:
        weights = [1 / (k + 1) ** s for k in range(n)]
        total = sum(weights)
        self.cdf = list(itertools.accumulate(w / total for w in weights))
        self.rng = random.Random(seed)

    def sample(self) -> int:
        return min(bisect.bisect_left(self.cdf, self.rng.random()), len(self.cdf) - 1)


def _rid() -> str:
    return secrets.token_hex(12)


def search_body(prefix: str, response_url: str, user_id: str = REQUESTER) -> str:
    return slash_command_body(text=f"search {prefix}", user_id=user_id, response_url=response_url)


def help_body(response_url: str, user_id: str = REQUESTER) -> str:
    return slash_command_body(text="help", user_id=user_id, response_url=response_url)


def approve_body(
    request_id: str, approver: str, response_url: str, message_ts: str = "1700000000.000100"
) -> str:
    return block_actions_body(
        action_id=ACTION_APPROVE,
        value=request_id,
        user_id=approver,
        response_url=response_url,
        channel_id=APPROVER_CHANNEL,
        message_ts=message_ts,
    )


def approve_role_body(request_id: str, approver: str, response_url: str, role: str) -> str:
    """The approval confirmation of a request that sets a role, submitted with `role`: what
    approves such a request (its Approve click only opens the confirmation)."""
    metadata = encode_approval_metadata(
        ApprovalForm(request_id=request_id, response_url=response_url, channel=APPROVER_CHANNEL)
    )
    option = {"text": {"type": "plain_text", "text": role}, "value": role}
    return view_submission_body(
        callback_id=VIEW_APPROVE,
        values={ROLE_BLOCK: {ROLE_INPUT: {"type": "static_select", "selected_option": option}}},
        private_metadata=metadata,
        user_id=approver,
    )


def response_ids() -> Iterator[str]:
    while True:
        yield _rid()
