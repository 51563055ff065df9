"""The one place where Connect's answers become the workflow's: values and error codes."""

from __future__ import annotations

import asyncio

import pytest

from bot.connect import codes
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
from tests.support.fake_connect import ERROR_TABLE, FakeConnect


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
    search_users = get_user = _raise


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
        directory.search_accounts("jul", limit=5),
        directory.get_account("0b5e0a4e-8c1b-4c9e-9d4e-3f2a1b0c9d8e"),
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


async def test_accounts_come_with_their_role_and_lock() -> None:
    fake = FakeConnect(provider="saml")
    fake.add_local_user("julie1", "Julie", "Goolly", user_role="publisher", locked=True)
    guid = fake.add_local_user("julie3", "Julie", "Three", user_role="administrator")
    fake.add_directory_user("julie2", "Julie", "Jolly")  # no account: not an account result
    async with ConnectClient(fake.asgi_url, fake.api_key, transport=fake.transport()) as client:
        directory = ConnectDirectory(client)
        page = await directory.search_accounts("julie", limit=1)
        assert page.total == 2 and len(page.entries) == 1
        page = await directory.search_accounts("julie", limit=10)
        found = {e.username: (e.user_role, e.locked, bool(e.guid)) for e in page.entries}
        assert found == {
            "julie1": ("publisher", True, True),
            "julie3": ("administrator", False, True),
        }
        assert all(not e.temp_ticket for e in page.entries)
        call = fake.calls_for(path="/__api__/v1/users")[-1]
        assert call.query["prefix"] == "julie" and call.query["page_size"] == "10"
        account = await directory.get_account(guid)
        assert account is not None and account.username == "julie3"
        assert account.user_role == "administrator"
        assert await directory.get_account("0b5e0a4e-8c1b-4c9e-9d4e-3f2a1b0c9d8e") is None
        before = len(fake.calls)
        assert await directory.get_account("../v1/user") is None
        assert len(fake.calls) == before, "a GUID that is no UUID never reaches a path"


async def test_remote_results_say_which_accounts_are_locked() -> None:
    fake = FakeConnect()
    fake.add_local_user("julie1", "Julie", "Goolly", user_role="publisher", locked=True)
    async with ConnectClient(fake.asgi_url, fake.api_key, transport=fake.transport()) as client:
        [entry] = (await ConnectDirectory(client).search("julie1", limit=5)).entries
    assert (entry.user_role, entry.locked) == ("publisher", True)


# -- every code the table has words for, as the fake Connect sends it ----------------------------


@pytest.mark.parametrize("code", sorted(c for c in codes.CODES if ERROR_TABLE[c][0] < 500))
async def test_every_listed_code_is_explained_in_the_tables_words(code: int) -> None:
    """Connect refuses the create PUT with `code`, as the published table has it (status and
    text): the workflow hears the table's kind and the approver reads its words."""
    fake = FakeConnect()
    fake.add_directory_user("julie2", "Julie", "Jolly", "julie2@example.com")
    async with ConnectClient(fake.asgi_url, fake.api_key, transport=fake.transport()) as client:
        directory = ConnectDirectory(client)
        entry = await directory.find_entry("julie2")
        assert entry is not None
        fake.refuse_next("PUT v1/users", code)
        with pytest.raises(DirectoryRefused) as caught:
            await directory.create_account(entry.temp_ticket)
    meaning = codes.CODES[code]
    assert caught.value.code == code and caught.value.kind is meaning.kind
    assert caught.value.explanation == meaning.explain(code)
    assert f"(Connect code {code})" in caught.value.explanation
    published = ERROR_TABLE[code][1]
    assert published not in caught.value.explanation, "the bot's own words, not Connect's"


async def test_a_code_without_words_shows_connects_message_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FakeConnect()
    fake.add_directory_user("julie2", "Julie", "Jolly", "julie2@example.com")
    async with ConnectClient(fake.asgi_url, fake.api_key, transport=fake.transport()) as client:
        directory = ConnectDirectory(client)
        entry = await directory.find_entry("julie2")
        assert entry is not None
        fake.refuse_next("PUT v1/users", 999, status=400, message="Quota of widgets reached.")
        with pytest.raises(DirectoryRefused) as caught:
            await directory.create_account(entry.temp_ticket)
    assert caught.value.kind is DirectoryProblem.OTHER and caught.value.code == 999
    assert "Quota of widgets reached." in caught.value.explanation
    assert any("999" in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (ConnectUnavailable("x", reason="timeout"), codes.TIMEOUT.what),
        (ConnectUnavailable("x", reason="server_error", status=502), "failed on its side (502)"),
    ],
)
def test_failures_without_a_code_have_words_too(error: ConnectUnavailable, words: str) -> None:
    from bot.connect.directory import unavailable

    assert words in unavailable(error).what


async def test_code_1_is_a_failure_on_connects_side_whose_outcome_is_unknown() -> None:
    """Code 1 comes with HTTP 500: after a PUT it may or may not have happened, so it is never
    read as a refusal (the workflow looks before anything is retried)."""
    assert ERROR_TABLE[1][0] == 500
    fake = FakeConnect()
    fake.add_directory_user("julie2", "Julie", "Jolly", "julie2@example.com")
    async with ConnectClient(
        fake.asgi_url, fake.api_key, transport=fake.transport(), read_retries=0
    ) as client:
        directory = ConnectDirectory(client)
        entry = await directory.find_entry("julie2")
        assert entry is not None
        fake.refuse_next("PUT v1/users", 1)
        with pytest.raises(DirectoryUnavailable) as caught:
            await directory.create_account(entry.temp_ticket)
    assert str(caught.value) == "Connect failed on its side (500)"


async def test_capabilities_are_read_once_at_a_time_and_a_failure_for_a_while() -> None:
    fake = FakeConnect()
    async with ConnectClient(
        fake.asgi_url, fake.api_key, transport=fake.transport(), read_retries=0
    ) as client:
        directory = ConnectDirectory(client)
        fake.fail_next("GET server_settings", 503, times=1000)
        for _ in range(2):
            results = await asyncio.gather(
                *(directory.capabilities() for _ in range(5)), return_exceptions=True
            )
            assert all(isinstance(r, DirectoryUnavailable) for r in results)
        assert fake.count("GET", "server_settings") == 1, "a failure is remembered for a while"
        fake.reset_faults()
        directory._capabilities_until = 0.0  # the failure's while has passed
        caps = await asyncio.gather(*(directory.capabilities() for _ in range(5)))
        assert {c.provider for c in caps} == {"LDAP"}
        assert fake.count("GET", "server_settings") == 2


# -- roles: the key's own, an account's, and setting one -----------------------------------------


async def test_roles_are_read_and_set_through_connects_dialect() -> None:
    fake = FakeConnect(owner_role="administrator")
    fake.add_local_user("julie1", "Julie", "Goolly", "julie1@example.com", user_role="viewer")
    guid = fake.get_local_user("julie1")["guid"]  # type: ignore[index]
    async with ConnectClient(fake.asgi_url, fake.api_key, transport=fake.transport()) as client:
        directory = ConnectDirectory(client)
        assert await directory.key_role() == "administrator"
        assert await directory.key_role() == "administrator"
        assert fake.count("GET", "v1/user") == 1, "the key's role is read once, then kept"
        account = await directory.get_account(guid)
        assert account is not None and account.user_role == "viewer" and account.guid == guid
        assert await directory.get_account("00000000-0000-4000-8000-000000000000") is None
        changed = await directory.set_role(guid, "publisher")
        assert changed.guid == guid and changed.user_role == "publisher"
        assert fake.get_local_user("julie1")["user_role"] == "publisher"  # type: ignore[index]
        assert [c.json for c in fake.calls_for("PUT")] == [{"user_role": "publisher"}]


@pytest.mark.parametrize(
    ("key_role", "code"),
    [("publisher", 23), ("administrator", 61)],
    ids=["a publisher's key may not change roles", "the last administrator"],
)
async def test_a_refused_role_is_a_refusal_in_words(key_role: str, code: int) -> None:
    fake = FakeConnect(owner_role=key_role)
    fake.add_local_user("ada", "Ada", "Min", user_role="publisher")
    # A publisher's key may not demote anyone; an administrator's may not demote itself when it
    # is the only administrator left.
    guid = fake.get_local_user("ada")["guid"] if code == 23 else fake.owner_guid  # type: ignore[index]
    async with ConnectClient(fake.asgi_url, fake.api_key, transport=fake.transport()) as client:
        with pytest.raises(DirectoryRefused) as refused:
            await ConnectDirectory(client).set_role(guid, "viewer")
    assert refused.value.code == code
    assert refused.value.explanation == codes.CODES[code].explain(code)
