"""The one place where Connect's answers become the workflow's: values and error codes."""

from __future__ import annotations

import pytest

from bot.connect.client import ConnectClient
from bot.connect.directory import ConnectDirectory, problem_kind
from bot.connect.errors import (
    ConnectAPIError,
    ConnectError,
    ConnectProtocolError,
    ConnectUnavailable,
)
from bot.workflow.ports import (
    DirectoryProblem,
    DirectoryRefused,
    DirectoryUnavailable,
    DirectoryUnreadable,
)
from tests.support.fake_connect import FakeConnect


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [
        (409, 8, DirectoryProblem.USERNAME_TAKEN),
        (400, 127, DirectoryProblem.STALE_TICKET),
        (400, 83, DirectoryProblem.TOO_MANY_RESULTS),
        (400, 119, DirectoryProblem.PROVIDER_CANNOT),
        (400, 132, DirectoryProblem.PROVIDER_CANNOT),
        (403, 50, DirectoryProblem.LOCKED),
        (401, 24, DirectoryProblem.NOT_PERMITTED),
        (401, None, DirectoryProblem.NOT_PERMITTED),
        (403, 19, DirectoryProblem.NOT_PERMITTED),
        (403, 23, DirectoryProblem.NOT_PERMITTED),
        (400, 64, DirectoryProblem.LICENCE_FULL),
        (400, 7, DirectoryProblem.USERNAME_REFUSED),
        (400, 107, DirectoryProblem.USERNAME_REFUSED),
        (403, None, DirectoryProblem.NOT_PERMITTED),
        (400, 3, DirectoryProblem.OTHER),
        (400, None, DirectoryProblem.OTHER),
    ],
)
def test_codes_become_problems(status: int, code: int | None, kind: DirectoryProblem) -> None:
    assert problem_kind(ConnectAPIError(status, code, "text that changes between versions")) is kind


class Failing:
    """A client whose every call raises one error."""

    def __init__(self, error: ConnectError) -> None:
        self.error = error

    async def _raise(self, *args: object, **kwargs: object) -> None:
        raise self.error

    search_remote = find_remote_user = create_from_ticket = find_user = _raise


@pytest.mark.parametrize(
    ("error", "expected", "problem"),
    [
        (
            ConnectUnavailable("x", reason="timeout"),
            DirectoryUnavailable,
            "Connect did not answer in time",
        ),
        (
            ConnectUnavailable("x", reason="connection"),
            DirectoryUnavailable,
            "Connect could not be reached",
        ),
        (
            ConnectUnavailable("x", reason="server_error", status=503),
            DirectoryUnavailable,
            "Connect failed on its side (503)",
        ),
        (
            ConnectUnavailable("x", reason="rate_limited", status=429),
            DirectoryUnavailable,
            "Connect asked the bot to slow down (429)",
        ),
        (
            ConnectProtocolError("x"),
            DirectoryUnreadable,
            "Connect gave an answer the bot could not read",
        ),
        (ConnectError("x"), DirectoryUnavailable, "Connect failed"),
    ],
)
async def test_failures_become_the_workflows_errors(
    error: ConnectError, expected: type[Exception], problem: str
) -> None:
    directory = ConnectDirectory(Failing(error))  # type: ignore[arg-type]
    for call in (
        directory.search("jul", limit=5),
        directory.find_entry("julie"),
        directory.create_account("ticket"),
        directory.find_account("julie"),
    ):
        with pytest.raises(expected) as caught:
            await call
        assert str(caught.value) == problem
        assert caught.value.__context__ is None, "no chain leads back to the client's error"


async def test_a_refused_creation_is_explained_in_words() -> None:
    directory = ConnectDirectory(Failing(ConnectAPIError(401, 24, "nope")))  # type: ignore[arg-type]
    with pytest.raises(DirectoryRefused) as caught:
        await directory.create_account("ticket")
    assert caught.value.kind is DirectoryProblem.NOT_PERMITTED and caught.value.code == 24
    assert "CONNECT_API_KEY" in caught.value.explanation


async def test_answers_become_the_workflows_values() -> None:
    fake = FakeConnect()
    fake.add_directory_user("julie2", "Julie", "Jolly", "julie2@example.com")
    fake.add_local_user("julie1", "Julie", "Goolly", "julie1@example.com")
    # In process: the fake's ASGI app behind httpx's transport, no port.
    async with ConnectClient(fake.asgi_url, fake.api_key, transport=fake.transport()) as client:
        directory = ConnectDirectory(client)
        page = await directory.search("julie", limit=10)
        assert {e.username for e in page.entries} >= {"julie2"} and page.total >= 1
        entry = await directory.find_entry("julie2")
        assert entry is not None and not entry.has_account and entry.temp_ticket
        created = await directory.create_account(entry.temp_ticket)
        assert created.username == "julie2" and created.guid
        found = await directory.find_account("julie1")
        assert found is not None and found.full_name == "Julie Goolly"
        assert await directory.find_account("nobody") is None
