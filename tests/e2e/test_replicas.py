"""Two real bot processes on one PostgreSQL: exactly once across replicas, and crash recovery.

Each bot is `python -m bot serve` in its own process, reached over loopback; the fake Slack and
fake Connect servers run in this test process.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from bot.slack.ui import ids
from bot.store.database import create_engine
from bot.store.migrate import upgrade
from bot.store.sql_store import SqlRequestStore
from bot.workflow.models import NewRequest, OutboxItem, OutboxKind, Person
from bot.workflow.states import RequestState
from tests.support.bot_under_test import (
    APPROVER,
    APPROVER_2,
    APPROVER_CHANNEL,
    BOT_TOKEN,
    REQUESTER,
    SIGNING_SECRET,
)
from tests.support.fake_connect import FakeConnect
from tests.support.fake_slack import FakeSlack
from tests.support.slack_requests import block_actions_body, post_signed, view_submission_body
from tests.support.store_backends import postgres_schema

PUT = {"method": "PUT", "path": "/__api__/v1/users"}
WELCOMED = "UJULIE2"
# The shortest lease the settings allow (2 x CONNECT_TIMEOUT + 10 s), so that a killed
# replica's lease runs out soon.
FAST_TAKEOVER = {"CONNECT_TIMEOUT": "1", "LEASE_SECONDS": "12"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class BotProcess:
    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = log_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot", "serve"],
            env={**env, "PORT": str(self.port), "HOST": "127.0.0.1"},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    async def wait_healthy(self, timeout: float = 30.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        async with httpx.AsyncClient() as client:
            while asyncio.get_running_loop().time() < deadline:
                if self.process.poll() is not None:
                    raise AssertionError(f"bot exited: {self.log_path.read_text()}")
                try:
                    if (await client.get(self.url + "/healthz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError(f"bot did not become healthy: {self.log_path.read_text()}")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def terminate(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._log.close()
        return self.process.returncode


@pytest.fixture
def fakes() -> Iterator[tuple[FakeSlack, FakeConnect]]:
    slack = FakeSlack().start()
    for user in (REQUESTER, APPROVER, APPROVER_2):
        slack.add_user(user)
    slack.add_user(WELCOMED, email="julie2@example.com")
    slack.add_channel(APPROVER_CHANNEL, is_private=True, members=["U0BOT", APPROVER, APPROVER_2])
    connect = FakeConnect().start()
    connect.add_directory_user("julie2", "Julie", "Jolly", "julie2@example.com")
    try:
        yield slack, connect
    finally:
        connect.stop()
        slack.stop()


@asynccontextmanager
async def replicas(
    slack: FakeSlack, connect: FakeConnect, tmp_path: Path, count: int = 2, **extra: str
) -> AsyncIterator[tuple[list[BotProcess], SqlRequestStore]]:
    async with postgres_schema() as database_url:
        engine = create_engine(database_url)
        await upgrade(engine)
        env = {
            "PATH": os.environ["PATH"],
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": slack.api_url,
            "SLACK_APPROVER_CHANNEL": APPROVER_CHANNEL,
            "CONNECT_SERVER": connect.url,
            "CONNECT_API_KEY": connect.api_key,
            "CONNECT_TIMEOUT": "2",
            "DATABASE_URL": database_url,
            "LEASE_SECONDS": "14",
            "RECOVERY_INTERVAL_SECONDS": "0.5",
            "LOG_LEVEL": "INFO",
            **extra,
        }
        bots = [BotProcess(env, tmp_path / f"bot{n}.log") for n in range(count)]
        try:
            await asyncio.gather(*(bot.wait_healthy() for bot in bots))
            yield bots, SqlRequestStore(engine)
        finally:
            for bot in bots:
                bot.terminate()
            await engine.dispose()


async def file_pending_request(
    store: SqlRequestStore, ticket: str, *, role: str | None = None
) -> str:
    """A pending request as the request listener files it, with the ticket a search just gave
    (asking for `role`, when given)."""
    request = await store.create(
        NewRequest(
            request_id="00112233445566aa",
            requester_id=REQUESTER,
            person=Person("julie2", "Julie Jolly", "julie2@example.com", ticket),
            justification="needs it",
            created_at=datetime.now(UTC),
            role_asked=role,
        ),
        outbox=[OutboxItem(OutboxKind.POST_CARD)],
    )
    await wait_until(lambda: _card_posted(store, request.id), what="the card")
    return request.id


async def wait_until(condition, timeout: float = 20.0, what: str = "condition") -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if await condition():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def card_updated(slack: FakeSlack) -> Callable[[], Awaitable[bool]]:
    """The approval's card update went out: a replica killed after this holds no message of
    the request's (an outbox message a killed replica held waits out its lease)."""

    async def updated() -> bool:
        return any(c.ok for c in slack.calls_to("chat.update"))

    return updated


def dm_count(slack: FakeSlack, user: str = REQUESTER) -> int:
    return sum(
        1 for c in slack.calls_to("chat.postMessage") if c.ok and c.args["channel"] == f"D{user}"
    )


async def click(client: httpx.AsyncClient, bot: BotProcess, request_id: str, user: str) -> int:
    body = block_actions_body(action_id=ids.ACTION_APPROVE, value=request_id, user_id=user)
    response = await post_signed(client, body, SIGNING_SECRET, path=bot.url + "/slack/events")
    return response.status_code


async def test_concurrent_clicks_on_two_replicas_make_one_put(fakes, tmp_path) -> None:
    slack, connect = fakes
    async with replicas(slack, connect, tmp_path) as (bots, store):
        request_id = await file_pending_request(store, connect.issue_ticket("julie2"))
        connect.latency = {"PUT": 0.3}
        async with httpx.AsyncClient(timeout=10) as client:
            statuses = await asyncio.gather(
                *(
                    click(client, bots[n % 2], request_id, (APPROVER, APPROVER_2)[n % 2])
                    for n in range(12)
                )
            )
        assert set(statuses) == {200}

        async def approved() -> bool:
            request = await store.get(request_id)
            return request.state is RequestState.APPROVED and dm_count(slack) >= 1

        await wait_until(approved, what="the approval and the DM")
        await asyncio.sleep(1.0)  # time for any duplicate to show up
        assert connect.count(**PUT) == 1
        assert dm_count(slack) == 1
        request = await store.get(request_id)
        assert request.decided_by in (APPROVER, APPROVER_2)


async def _card_posted(store: SqlRequestStore, request_id: str) -> bool:
    request = await store.get(request_id)
    return bool(request and request.card_ts)


async def test_killed_replica_is_settled_by_the_other(fakes, tmp_path) -> None:
    slack, connect = fakes
    async with replicas(slack, connect, tmp_path, **FAST_TAKEOVER) as (bots, store):
        request_id = await file_pending_request(store, connect.issue_ticket("julie2"))
        # The PUT creates the account, then hangs: the approver's process dies before recording.
        connect.put_mode = "commit_then_hang"
        async with httpx.AsyncClient(timeout=10) as client:
            assert await click(client, bots[0], request_id, APPROVER) == 200

        async def put_sent() -> bool:
            return connect.count(**PUT) == 1

        await wait_until(put_sent, what="the PUT")
        await wait_until(card_updated(slack), what="the card update")
        bots[0].kill()
        connect.put_mode = "normal"
        request = await store.get(request_id)
        assert request.state is RequestState.PROVISIONING

        async def settled() -> bool:
            request = await store.get(request_id)
            return request.state is RequestState.APPROVED and dm_count(slack) == 1

        await wait_until(settled, 30, what="the other replica to settle the expired lease")
        request = await store.get(request_id)
        assert request.connect_guid == connect.get_local_user("julie2")["guid"]
        assert request.lease_owner is None
        assert connect.count(**PUT) == 1


async def confirm_approval(
    client: httpx.AsyncClient, slack: FakeSlack, bot: BotProcess, request_id: str, user: str
) -> None:
    """Approve a request that sets a role: the click opens the confirmation, which is submitted
    with the role it preselects."""
    assert await click(client, bot, request_id, user) == 200

    async def opened() -> bool:
        return any(c.ok for c in slack.calls_to("views.open"))

    await wait_until(opened, what="the approval confirmation")
    view = [c for c in slack.calls_to("views.open") if c.ok][-1].args["view"]
    if isinstance(view, str):
        view = json.loads(view)
    role_block = next(b for b in view["blocks"] if b.get("block_id") == ids.ROLE_BLOCK)
    role = role_block["element"]["initial_option"]["value"]
    body = view_submission_body(
        callback_id=ids.VIEW_APPROVE,
        values={
            ids.ROLE_BLOCK: {
                ids.ROLE_INPUT: {
                    "type": "static_select",
                    "selected_option": {
                        "text": {"type": "plain_text", "text": role},
                        "value": role,
                    },
                }
            }
        },
        private_metadata=view["private_metadata"],
        user_id=user,
    )
    response = await post_signed(client, body, SIGNING_SECRET, path=bot.url + "/slack/events")
    assert response.status_code == 200


async def test_killed_between_the_account_and_its_role_the_other_replica_finishes(
    fakes, tmp_path
) -> None:
    """A request for Publisher: the approver's replica creates the account, records it, sends
    the role change (which Connect carries out) and dies before the answer. The other replica
    finishes: one account, one role change, a publisher."""
    slack, connect = fakes
    async with replicas(slack, connect, tmp_path, **FAST_TAKEOVER) as (bots, store):
        request_id = await file_pending_request(
            store, connect.issue_ticket("julie2"), role="publisher"
        )
        connect.write_mode("PUT v1/users/*", "commit_then_hang")
        async with httpx.AsyncClient(timeout=10) as client:
            await confirm_approval(client, slack, bots[0], request_id, APPROVER)

        async def role_sent() -> bool:
            return connect.count("PUT", "v1/users/*") == 1

        await wait_until(role_sent, what="the role change")
        await wait_until(card_updated(slack), what="the card update")
        bots[0].kill()
        connect.write_mode("PUT v1/users/*", "normal")
        request = await store.get(request_id)
        assert request.state is RequestState.PROVISIONING
        assert [s.status.value for s in request.steps] == ["done", "pending"]

        async def settled() -> bool:
            request = await store.get(request_id)
            return request.state is RequestState.APPROVED and dm_count(slack) == 1

        await wait_until(settled, 30, what="the other replica to finish the role step")
        await asyncio.sleep(1.0)  # time for any duplicate to show up
        request = await store.get(request_id)
        assert [s.status.value for s in request.steps] == ["done", "done"]
        assert connect.get_local_user("julie2")["user_role"] == "publisher"
        assert connect.count(**PUT) == 1, "the account is created once"
        assert connect.count("PUT", "v1/users/*") == 1, "the role is set once"
        assert dm_count(slack, WELCOMED) == 1


async def test_put_committed_after_the_timeout_across_replicas(fakes, tmp_path) -> None:
    """CONNECT_TIMEOUT=2 and a PUT Connect carries out after 3 s (answering much later), with
    a Slack that makes the bot wait out Retry-After: while one replica checks the outcome, a
    click on the other makes no second PUT; one DM, one welcome, the record says it."""
    slack, connect = fakes
    async with replicas(slack, connect, tmp_path) as (bots, store):
        request_id = await file_pending_request(store, connect.issue_ticket("julie2"))
        connect.put_mode = "commit_late"
        connect.commit_delay = 3.0
        connect.answer_delay = 20.0
        slack.fail("chat.postMessage", status=429, retry_after=1, times=2)
        async with httpx.AsyncClient(timeout=10) as client:
            assert await click(client, bots[0], request_id, APPROVER) == 200

            async def checking() -> bool:
                request = await store.get(request_id)
                return request.state is RequestState.PROVISIONING and "checking whether" in (
                    request.last_error or ""
                )

            await wait_until(checking, what="the first replica to check the outcome")
            assert await click(client, bots[1], request_id, APPROVER_2) == 200

        async def approved() -> bool:
            request = await store.get(request_id)
            return request.state.is_final and dm_count(slack) >= 1 and dm_count(slack, WELCOMED)

        await wait_until(approved, what="the approval, the DM and the welcome")
        await asyncio.sleep(1.5)  # time for any duplicate to show up
        request = await store.get(request_id)
        assert request.state is RequestState.APPROVED and request.decided_by == APPROVER
        assert request.outcome_note.startswith("Created during this approval")
        assert request.connect_guid == connect.get_local_user("julie2")["guid"]
        assert connect.count(**PUT) == 1
        assert dm_count(slack) == 1 and dm_count(slack, WELCOMED) == 1


async def test_recovery_on_another_replica_compares_with_put_sent_at(fakes, tmp_path) -> None:
    """The approver's replica dies while Connect is still answering its PUT; the account
    Connect has is an hour older than that PUT: the other replica records that it already
    existed (no welcome), instead of reporting it as created."""
    slack, connect = fakes
    async with replicas(slack, connect, tmp_path, **FAST_TAKEOVER) as (bots, store):
        request_id = await file_pending_request(store, connect.issue_ticket("julie2"))
        an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
        guid = connect.add_local_user("julie2", "Julie", "Jolly", created_time=an_hour_ago)
        connect.latency = {"PUT": 30}
        async with httpx.AsyncClient(timeout=10) as client:
            assert await click(client, bots[0], request_id, APPROVER) == 200

        async def put_sent() -> bool:
            return connect.count(**PUT) == 1

        await wait_until(put_sent, what="the PUT")
        await wait_until(card_updated(slack), what="the card update")
        bots[0].kill()

        async def settled() -> bool:
            request = await store.get(request_id)
            return request.state.is_final and dm_count(slack) == 1

        await wait_until(settled, 30, what="the other replica to settle the expired lease")
        request = await store.get(request_id)
        assert request.state is RequestState.ALREADY_EXISTS and request.connect_guid == guid
        assert request.put_sent_at is not None and request.lease_owner is None
        assert connect.count(**PUT) == 1
        await asyncio.sleep(1.0)
        assert dm_count(slack, WELCOMED) == 0, "nobody is welcomed to an account they had"


async def test_sigterm_exits_cleanly(fakes, tmp_path) -> None:
    slack, connect = fakes
    async with replicas(slack, connect, tmp_path, count=1) as (bots, _):
        # uvicorn shuts down gracefully, then re-raises the signal so the exit status says so.
        assert bots[0].terminate() in (0, -signal.SIGTERM)
        log = bots[0].log_path.read_text()
        assert "bot stopped" in log and "Traceback" not in log
        assert "will be unused" not in log, "Bolt must not pick up a token of its own"


async def open_confirmation(
    client: httpx.AsyncClient, slack: FakeSlack, bot: BotProcess, request_id: str, user: str
) -> dict:
    """Press Approve as `user` and return the confirmation it opened (not submitted)."""
    opened = len([c for c in slack.calls_to("views.open") if c.ok])
    assert await click(client, bot, request_id, user) == 200

    async def one_more() -> bool:
        return len([c for c in slack.calls_to("views.open") if c.ok]) > opened

    await wait_until(one_more, what="the approval confirmation")
    view = [c for c in slack.calls_to("views.open") if c.ok][-1].args["view"]
    return json.loads(view) if isinstance(view, str) else view


async def submit_confirmation(
    client: httpx.AsyncClient, bot: BotProcess, view: dict, user: str, role: str
) -> int:
    body = view_submission_body(
        callback_id=ids.VIEW_APPROVE,
        values={
            ids.ROLE_BLOCK: {
                ids.ROLE_INPUT: {
                    "type": "static_select",
                    "selected_option": {
                        "text": {"type": "plain_text", "text": role},
                        "value": role,
                    },
                }
            }
        },
        private_metadata=view["private_metadata"],
        user_id=user,
    )
    response = await post_signed(client, body, SIGNING_SECRET, path=bot.url + "/slack/events")
    return response.status_code


async def test_two_approvals_clicked_at_once_on_two_replicas_change_connect_once(
    fakes, tmp_path
) -> None:
    """Administrator needs two approvals: the two approvers submit at the same moment, each
    several times, on both replicas. Exactly one of the approvals is the last one needed: one
    account, one role change, and both approvers on the record."""
    slack, connect = fakes
    extra = {
        "APPROVALS_REQUIRED": "administrator:2",
        "REQUESTABLE_ROLES": "viewer,publisher,administrator",
    }
    async with replicas(slack, connect, tmp_path, **extra) as (bots, store):
        request_id = await file_pending_request(
            store, connect.issue_ticket("julie2"), role="administrator"
        )
        connect.latency = {"PUT": 0.3}
        async with httpx.AsyncClient(timeout=10) as client:
            views = {
                user: await open_confirmation(client, slack, bots[n], request_id, user)
                for n, user in enumerate((APPROVER, APPROVER_2))
            }
            statuses = await asyncio.gather(
                *(
                    submit_confirmation(client, bots[n % 2], views[user], user, "administrator")
                    for n in range(6)
                    for user in (APPROVER, APPROVER_2)
                )
            )
        assert set(statuses) == {200}

        async def approved() -> bool:
            request = await store.get(request_id)
            return request.state is RequestState.APPROVED and dm_count(slack) >= 1

        await wait_until(approved, what="the approval and the DM")
        await asyncio.sleep(1.0)  # time for any duplicate to show up
        assert connect.count(**PUT) == 1, "the account is created once"
        assert connect.count("PUT", "v1/users/*") == 1, "the role is set once"
        assert connect.get_local_user("julie2")["user_role"] == "administrator"
        request = await store.get(request_id)
        assert sorted(a.approver_id for a in request.approvals) == [APPROVER, APPROVER_2]
        assert all(a.role == "administrator" for a in request.approvals)
        assert request.decided_by in (APPROVER, APPROVER_2)
        assert dm_count(slack) == 1
