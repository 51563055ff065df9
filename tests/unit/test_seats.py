"""Licence seats: the Connect adapter against the fake Connect (in process), its cache, the
workflow behind `/connect-user seats`, and the renderers (the card's line, the command's answer)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.cache.backend import build_backend
from bot.cache.keyed import KeyedCache
from bot.cache.seats import CachedSeats, dump_seats, load_seats
from bot.connect.client import ConnectClient
from bot.connect.seats import ConnectSeats
from bot.slack.command import Help, Seats, UsageProblem, parse_command
from bot.slack.ui.card import approval_card
from bot.slack.ui.messages import usage_message
from bot.slack.ui.seats import seat_blocks, seats_message, seats_refusal
from bot.workflow.models import Account, IdleAccounts, RequestKind, SeatCount
from bot.workflow.outcomes import Refusal, Refused
from bot.workflow.ports import (
    DirectoryProblem,
    DirectoryRefused,
    DirectoryUnavailable,
    DirectoryUnreadable,
)
from bot.workflow.seats import SeatReport, SeatsOutcome, SeatsProblem, read_seats
from bot.workflow.states import RequestState
from tests.support.blockkit import assert_valid_message
from tests.support.bot_under_test import response_text
from tests.support.fake_connect import FakeConnect
from tests.support.fake_ports import Approvers
from tests.support.samples import make_request
from tests.support.strategies import PROPERTY, requests

CONNECT = "https://connect.example.com/"
LONG_AGO = datetime.now(UTC) - timedelta(days=800)


def seeded() -> FakeConnect:
    """The key's owner (an administrator, active now) and four more accounts: two active, one
    inactive for longer than the licence's window, one locked."""
    fake = FakeConnect()
    fake.add_local_user("ann")
    fake.add_local_user("ben")
    fake.add_local_user("cat", active_time=LONG_AGO)
    fake.add_local_user("dan", locked=True)
    fake.license["users"] = 50
    return fake


@pytest.fixture
async def fake_and_client() -> AsyncIterator[tuple[FakeConnect, ConnectClient]]:
    fake = seeded()
    async with ConnectClient(
        fake.asgi_url, fake.api_key, transport=fake.transport(), read_retries=0
    ) as client:
        yield fake, client


# -- the adapter -----------------------------------------------------------------------------


async def test_an_administrators_key_counts_seats(fake_and_client) -> None:
    fake, client = fake_and_client
    seats = await ConnectSeats(client, timeout=2).seats()
    assert seats == SeatCount(in_use=3, limit=50, inactive=1, locked=1, activity_days=365)
    assert not seats.full and seats.free == 47
    for status in ("licensed", "inactive", "locked"):
        (call,) = [
            c for c in fake.calls_for("GET", "v1/users") if c.query.get("account_status") == status
        ]
        assert call.query["page_size"] == "1", "a count asks for one row"


async def test_the_limit_is_zero_for_no_limit_and_none_when_connect_does_not_say(
    fake_and_client,
) -> None:
    fake, client = fake_and_client
    fake.license["users"] = 0
    seats = await ConnectSeats(client, timeout=2).seats()
    assert seats.limit == 0 and not seats.full and seats.free is None
    fake.license = {}
    seats = await ConnectSeats(client, timeout=2).seats()
    assert seats.limit is None and not seats.full


@pytest.mark.parametrize("role", ["publisher", "viewer"])
async def test_a_key_that_is_not_an_administrators_reads_no_seats_and_asks_once(
    fake_and_client, role: str
) -> None:
    fake, client = fake_and_client
    fake.key_role = role
    adapter = ConnectSeats(client, timeout=2)
    for _ in range(3):
        with pytest.raises(DirectoryRefused) as caught:
            await adapter.seats()
        assert caught.value.kind is DirectoryProblem.NOT_PERMITTED
        assert f"a {role}'s" in caught.value.explanation
    assert fake.count("GET", "v1/user") == 1, "the key's role is read once, then kept"
    assert fake.count("GET", "v1/users") == 0, "no count Connect would refuse is asked for"


async def test_a_count_refused_after_all_is_the_same_calm_state(fake_and_client) -> None:
    fake, client = fake_and_client
    adapter = ConnectSeats(client, timeout=2)
    assert await adapter.key_role() == "administrator"
    fake.key_role = "publisher"  # demoted after the role was read
    with pytest.raises(DirectoryRefused) as caught:
        await adapter.seats()
    assert caught.value.kind is DirectoryProblem.NOT_PERMITTED
    counted = fake.count("GET", "v1/users")
    with pytest.raises(DirectoryRefused):
        await adapter.seats()
    assert fake.count("GET", "v1/users") == counted, "believed at once, not asked again"


async def test_connect_failures_are_the_workflows_errors(fake_and_client) -> None:
    fake, client = fake_and_client
    adapter = ConnectSeats(client, timeout=2)
    fake.fail_next("GET v1/users", 503)
    with pytest.raises(DirectoryUnavailable, match="Connect failed on its side"):
        await adapter.seats()
    fake.malformed = "GET server_settings"
    with pytest.raises(DirectoryUnreadable):
        await adapter.seats()
    fake.malformed = False
    assert (await adapter.seats()).in_use == 3


async def test_a_slow_connect_is_given_up_on_within_the_timeout(fake_and_client) -> None:
    fake, client = fake_and_client
    adapter = ConnectSeats(client, timeout=0.2)
    await adapter.key_role()
    fake.latency = {"GET v1/users": 5.0}
    started = asyncio.get_running_loop().time()
    with pytest.raises(DirectoryUnavailable, match="did not answer in time"):
        await adapter.seats()
    assert asyncio.get_running_loop().time() - started < 2


async def test_a_key_role_that_cannot_be_read_is_remembered_for_a_while(fake_and_client) -> None:
    fake, client = fake_and_client
    now = [0.0]
    adapter = ConnectSeats(client, timeout=2, clock=lambda: now[0])
    fake.fail_next("GET v1/user", 503, times=100)
    for _ in range(3):
        with pytest.raises(DirectoryUnavailable):
            await adapter.seats()
    assert fake.count("GET", "v1/user") == 1
    fake.reset_faults()
    now[0] += 61
    assert (await adapter.seats()).in_use == 3


# -- the cache -------------------------------------------------------------------------------


class Counting:
    def __init__(self, answer: SeatCount | Exception) -> None:
        self.answer = answer
        self.calls = 0

    async def seats(self) -> SeatCount:
        self.calls += 1
        await asyncio.sleep(0.01)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


SEATS = SeatCount(in_use=12, limit=50, inactive=3, locked=1, activity_days=365)


async def test_seats_are_cached_briefly_and_read_once_for_a_burst() -> None:
    inner = Counting(SEATS)
    cached = CachedSeats(inner, KeyedCache(build_backend(None)), scope="https://c#k", ttl=60)
    results = await asyncio.gather(*(cached.seats() for _ in range(20)))
    assert set(results) == {SEATS} and inner.calls == 1
    assert await cached.seats() == SEATS and inner.calls == 1


async def test_refusals_and_failures_are_not_cached() -> None:
    inner = Counting(DirectoryUnavailable("Connect did not answer in time"))
    cached = CachedSeats(inner, KeyedCache(build_backend(None)), scope="s", ttl=60)
    for _ in range(2):
        with pytest.raises(DirectoryUnavailable):
            await cached.seats()
    assert inner.calls == 2


async def test_ttl_zero_reads_every_time() -> None:
    inner = Counting(SEATS)
    cached = CachedSeats(inner, KeyedCache(build_backend(None)), scope="s", ttl=0)
    await cached.seats()
    await cached.seats()
    assert inner.calls == 2


def test_a_cached_count_round_trips_through_json_and_a_bad_one_is_refused() -> None:
    assert load_seats(json.loads(json.dumps(dump_seats(SEATS)))) == SEATS
    no_limit = SeatCount(in_use=1, limit=None)
    assert load_seats(json.loads(json.dumps(dump_seats(no_limit)))) == no_limit
    for bad in ({**dump_seats(SEATS), "in_use": -1}, {**dump_seats(SEATS), "locked": "2"}, {}):
        with pytest.raises((ValueError, KeyError)):
            load_seats(bad)


# -- the workflow ----------------------------------------------------------------------------


class Scripted:
    def __init__(self, answer: SeatCount | Exception) -> None:
        self.answer = answer

    async def seats(self) -> SeatCount:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer

    async def idle_accounts(self, *, idle_since: datetime) -> list[Account]:
        return []


async def test_only_approvers_see_the_seats() -> None:
    report = SeatReport(seats=Scripted(SEATS), approvers=Approvers("UAPPROVER"))
    assert await report.for_approver("UAPPROVER") == SeatsOutcome(
        seats=SEATS, idle=IdleAccounts(accounts=(), total=0, idle_days=90)
    )
    assert await report.for_approver("UOUTSIDER") == Refused(Refusal.NOT_APPROVER)
    broken = SeatReport(seats=Scripted(SEATS), approvers=Approvers(broken=True))
    assert await broken.for_approver("UAPPROVER") == Refused(Refusal.CANNOT_CHECK)


@pytest.mark.parametrize(
    ("error", "problem"),
    [
        (
            DirectoryRefused(DirectoryProblem.NOT_PERMITTED, "no", "Not an admin."),
            SeatsProblem.KEY_CANNOT_READ,
        ),
        (DirectoryRefused(DirectoryProblem.OTHER, "no", "Odd."), SeatsProblem.CONNECT_REFUSED),
        (DirectoryUnavailable("Connect did not answer"), SeatsProblem.CONNECT_UNAVAILABLE),
        (DirectoryUnreadable("garbage"), SeatsProblem.CONNECT_GARBAGE),
    ],
)
async def test_each_failure_is_a_problem(error: Exception, problem: SeatsProblem) -> None:
    assert await read_seats(Scripted(error)) == SeatsOutcome(problem=problem)


# -- the renderers ---------------------------------------------------------------------------


def test_the_card_line_says_seats_in_use_of_the_limit() -> None:
    (block,) = seat_blocks(SeatCount(in_use=12, limit=50))
    assert "Seats: 12 of 50 in use" in json.dumps(block)
    assert "log in" not in json.dumps(block)


@pytest.mark.parametrize("in_use", [50, 52])
def test_a_full_licence_is_a_warning_in_words_not_a_block(in_use: int) -> None:
    text = json.dumps(seat_blocks(SeatCount(in_use=in_use, limit=50)))
    assert (
        f"{in_use} of 50 seats in use: this person will not be able to log in until a seat is freed"
    ) in text
    assert "may still approve" in text


def test_no_line_when_seats_cannot_be_read_and_no_limit_is_said_so() -> None:
    assert seat_blocks(None) == []
    assert "no user limit" in json.dumps(seat_blocks(SeatCount(in_use=7, limit=0)))
    assert "Seats: 7 in use" in json.dumps(seat_blocks(SeatCount(in_use=7, limit=None)))


def test_the_card_shows_seats_only_while_the_request_waits() -> None:
    full = SeatCount(in_use=50, limit=50)
    pending = approval_card(make_request(), connect_url=CONNECT, seats=full)
    assert_valid_message(pending)
    assert "will not be able to log in" in response_text(pending)
    assert [b for b in pending["blocks"] if b.get("type") == "actions"], "Approve stays"
    assert "Seats" not in response_text(approval_card(make_request(), connect_url=CONNECT))
    for state in (RequestState.APPROVED, RequestState.DENIED, RequestState.PROVISIONING):
        decided = approval_card(
            make_request(state=state, decided_by="U0APP", connect_guid=None),
            connect_url=CONNECT,
            seats=full,
        )
        assert "seats in use" not in response_text(decided)


counts = st.integers(min_value=0, max_value=10**9)
seat_counts = st.builds(
    SeatCount,
    in_use=counts,
    limit=st.none() | counts,
    inactive=counts,
    locked=counts,
    activity_days=st.none() | counts,
)


@PROPERTY
@given(req=requests, seats=st.none() | seat_counts)
def test_a_card_with_any_seats_is_valid(req, seats: SeatCount | None) -> None:
    msg = approval_card(req, connect_url=CONNECT, seats=seats)
    assert_valid_message(msg)
    # Only a new account takes a seat: a role change's card has no seat line.
    full = (
        seats is not None
        and seats.full
        and req.state is RequestState.PENDING
        and req.kind is RequestKind.NEW_ACCOUNT
    )
    assert ("will not be able to log in" in response_text(msg)) is full


@PROPERTY
@given(seats=seat_counts)
def test_any_seats_answer_is_valid(seats: SeatCount) -> None:
    assert_valid_message(seats_message(SeatsOutcome(seats=seats)))


def test_the_seats_command_answer() -> None:
    answer = seats_message(SeatsOutcome(seats=SEATS))
    assert_valid_message(answer)
    text = response_text(answer)
    assert "12 of 50 seats in use" in text and "Free: 38" in text
    assert "Inactive accounts (no seat): 3" in text and "Locked accounts (no seat): 1" in text
    assert "365 days" in text and "first time" in text
    full = response_text(seats_message(SeatsOutcome(seats=SeatCount(in_use=50, limit=50))))
    assert "No seat is free" in full and "Free: 0" in full


@pytest.mark.parametrize(
    ("problem", "words"),
    [
        (SeatsProblem.KEY_CANNOT_READ, "not an administrator's"),
        (SeatsProblem.CONNECT_UNAVAILABLE, "try again in a minute"),
        (SeatsProblem.CONNECT_REFUSED, "refused"),
        (SeatsProblem.CONNECT_GARBAGE, "could not read"),
    ],
)
def test_why_there_are_no_seat_counts(problem: SeatsProblem, words: str) -> None:
    answer = seats_message(SeatsOutcome(problem=problem))
    assert_valid_message(answer)
    assert words in response_text(answer)


@pytest.mark.parametrize("reason", list(Refusal))
def test_every_refusal_of_the_seats_command_has_words(reason: Refusal) -> None:
    answer = seats_refusal(reason, approver_channel="CAPPROVERS")
    assert_valid_message(answer)
    assert answer["text"]


def test_a_non_approver_is_told_who_may_see_seats() -> None:
    text = response_text(seats_refusal(Refusal.NOT_APPROVER, approver_channel="CAPPROVERS"))
    assert "only approvers" in text and "<#CAPPROVERS>" in text


# -- the command -----------------------------------------------------------------------------


def test_seats_is_a_subcommand_that_takes_nothing() -> None:
    assert parse_command("seats") == Seats()
    assert parse_command(" SEATS ") == Seats()
    assert parse_command("seats now") == Help(UsageProblem.TAKES_NOTHING, typed="seats")
    assert "/connect-user seats" in response_text(usage_message())


def _idle(n: int) -> Account:
    return Account(
        guid=f"00000000-0000-4000-8000-{n:012d}",
        username=f"idle{n}",
        first_name="<!channel>",
        active_time=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=n),
    )


@pytest.mark.parametrize("page", [1, 2, 3, 99, 0])
async def test_the_idle_accounts_come_a_page_at_a_time(page: int) -> None:
    class Idle(Scripted):
        async def idle_accounts(self, *, idle_since: datetime) -> list[Account]:
            return [_idle(n) for n in range(33)]

    report = SeatReport(seats=Idle(SEATS), approvers=Approvers("UAPPROVER"), inactive_after_days=7)
    outcome = await report.for_approver("UAPPROVER", page=page)
    assert isinstance(outcome, SeatsOutcome) and outcome.idle is not None
    shown = min(max(page, 1), 3)
    assert (outcome.idle.page, outcome.idle.pages, outcome.idle.total) == (shown, 3, 33)
    assert outcome.idle.accounts == tuple(_idle(n) for n in range(33)[(shown - 1) * 15 :][:15])
    message = seats_message(outcome)
    assert_valid_message(message)
    # Names are Connect's (untrusted): only ever in plain text.
    for block in message["blocks"]:
        if "<!channel>" in json.dumps(block):
            assert block["text"]["type"] == "plain_text"
    assert "nobody used for 7 days" in response_text(message)
