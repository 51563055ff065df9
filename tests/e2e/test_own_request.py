"""Asking for your own account, through signed Slack requests: `/connect-user request` and the
Home tab's button find the requester's directory entry by the email on their Slack profile —
exactly, never by a prefix — and open the usual form; none, several or an account they have
already are said in words."""

from __future__ import annotations

import json

import pytest

from bot.slack.ui import ids
from bot.workflow.models import SubjectLink
from tests.support.blockkit import assert_valid_view
from tests.support.bot_under_test import REQUESTER, BotUnderTest
from tests.support.flows import PUT, approve, home_of, open_home, role_state
from tests.support.slack_requests import home_block_actions_body

ANA = "UANALIMA1"


def all_text(view: dict) -> str:
    return json.dumps(view["blocks"], ensure_ascii=False)


async def request_own(bot: BotUnderTest, user_id: str = ANA) -> dict:
    """Type `/connect-user request`; returns the view the loading modal became."""
    opened, updated = bot.slack.count("views.open"), bot.slack.count("views.update")
    response, _ = await bot.command("request", user_id=user_id)
    assert response.status_code == 200
    loading = (await bot.slack.wait_for("views.open", count=opened + 1))[-1]
    assert_valid_view(loading.args["view"])
    assert "Looking for you" in all_text(loading.args["view"])
    update = (await bot.slack.wait_for("views.update", count=updated + 1))[-1]
    assert update.ok, update.error
    assert update.args["view_id"] == loading.response["view"]["id"]
    await bot.settle()
    view = update.args["view"]
    assert_valid_view(view)
    return view


def ana(bot: BotUnderTest, email: str = "ana.lima@example.com") -> None:
    bot.slack.add_user(ANA, email=email, real_name="Ana Lima")


async def test_the_requester_is_found_by_their_email_and_files_for_themselves(
    bot: BotUnderTest,
) -> None:
    ana(bot)
    # Found by name, but another person's email: never taken for Ana.
    bot.connect.add_directory_user("alima", "Ana", "Lima", "ana.lima@other.example.com")
    bot.connect.add_directory_user("ana.lima", "Ana", "Lima", "Ana.Lima@Example.com")
    view = await request_own(bot)
    assert view["callback_id"] == ids.VIEW_JUSTIFICATION
    assert "ana.lima" in all_text(view) and "alima" not in all_text(view).replace("ana.lima", "")
    response = await bot.submit(
        ids.VIEW_JUSTIFICATION,
        {
            ids.JUSTIFICATION_BLOCK: {ids.JUSTIFICATION_INPUT: {"value": "I join the team."}},
            ids.ROLE_BLOCK: {ids.ROLE_INPUT: role_state("viewer")},
        },
        view["private_metadata"],
        user_id=ANA,
    )
    assert response.status_code == 200
    await bot.settle()
    [request] = await bot.runtime.store.list_requests(requester_id=ANA)
    assert request.username == "ana.lima"
    # The request is for the requester: recorded as its person, so nobody approves their own.
    assert request.subject_id == ANA and request.subject_link is SubjectLink.LINKED
    await approve(bot, request.id)
    assert bot.connect.count(**PUT) == 1


async def test_a_prefix_match_is_not_the_person(bot: BotUnderTest) -> None:
    """`hui1.li` finds `hui1.liu` by prefix; only the same email is the same person."""
    bot.slack.add_user(ANA, email="hui1.li@example.com", real_name="Hui Li")
    bot.connect.add_directory_user("hui1.liu", "Hui", "Liu", "hui1.liu@example.com")
    view = await request_own(bot)
    text = all_text(view)
    assert "No one in the directory has the email hui1.li@example.com" in text
    assert "/connect-user search" in text
    assert bot.slack.count("views.update") == 1


async def test_two_entries_with_the_email_are_refused_in_words(bot: BotUnderTest) -> None:
    ana(bot)
    bot.connect.add_directory_user("ana.lima", "Ana", "Lima", "ana.lima@example.com")
    bot.connect.add_directory_user("alima2", "Ana", "Lima", "ana.lima@example.com")
    text = all_text(await request_own(bot))
    assert "Several directory entries have the email ana.lima@example.com" in text


async def test_a_profile_without_email_is_told_to_search(bot: BotUnderTest) -> None:
    bot.slack.add_user(ANA, real_name="Ana Lima")  # no email on the profile
    text = all_text(await request_own(bot))
    assert "shows no email address" in text and "/connect-user search" in text


async def test_someone_with_an_account_is_told_its_role_and_may_change_it(
    bot: BotUnderTest,
) -> None:
    ana(bot)
    guid = bot.connect.add_local_user(
        "ana.lima", "Ana", "Lima", "ana.lima@example.com", user_role="viewer"
    )
    view = await request_own(bot)
    text = all_text(view)
    assert "You already have a Posit Connect account" in text and "Role: Viewer" in text
    [change] = [
        e
        for b in view["blocks"]
        if b.get("type") == "actions"
        for e in b["elements"]
        if e["action_id"] == ids.ACTION_CHANGE_ROLE
    ]
    assert change["value"] == guid
    # Change role inside this modal replaces it with the role form.
    updated = bot.slack.count("views.update")
    body = home_block_actions_body(
        action_id=ids.ACTION_CHANGE_ROLE,
        value=guid,
        user_id=ANA,
        view_id="VOWN0001",
        view_type="modal",
    )
    assert (await bot.post(body)).status_code == 200
    updates = await bot.slack.wait_for("views.update", count=updated + 2)
    await bot.settle()
    assert updates[-2].args["view_id"] == "VOWN0001"
    form = updates[-1].args["view"]
    assert form["callback_id"] == ids.VIEW_ROLE_CHANGE
    assert bot.slack.count("views.open") == 1, "no second modal is opened over the first"


async def test_the_home_tab_offers_it_to_people_without_an_account(bot: BotUnderTest) -> None:
    ana(bot)
    bot.connect.add_directory_user("ana.lima", "Ana", "Lima", "ana.lima@example.com")
    await open_home(bot, ANA)
    buttons = [
        e for b in home_of(bot, ANA)["blocks"] if b.get("type") == "actions" for e in b["elements"]
    ]
    assert [b["action_id"] for b in buttons] == [ids.ACTION_REQUEST_MINE]
    opened, updated = bot.slack.count("views.open"), bot.slack.count("views.update")
    body = home_block_actions_body(action_id=ids.ACTION_REQUEST_MINE, value="me", user_id=ANA)
    assert (await bot.post(body)).status_code == 200
    await bot.slack.wait_for("views.open", count=opened + 1)
    update = (await bot.slack.wait_for("views.update", count=updated + 1))[-1]
    assert update.args["view"]["callback_id"] == ids.VIEW_JUSTIFICATION

    # Someone with an account sees it instead of the button.
    bot.slack.add_user(REQUESTER, email="jo@example.com", real_name="Jo Jones")
    bot.connect.add_local_user("jo", "Jo", "Jones", "jo@example.com", user_role="publisher")
    await open_home(bot, REQUESTER)
    home = home_of(bot, REQUESTER)
    assert "Your Posit Connect account: jo · Role: Publisher" in all_text(home)
    assert not any(
        e.get("action_id") == ids.ACTION_REQUEST_MINE
        for b in home["blocks"]
        if b.get("type") == "actions"
        for e in b["elements"]
    )


async def test_a_form_whose_filing_fails_tells_its_sender(
    bot: BotUnderTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After the form is acknowledged nothing else would answer: a failure while filing is told
    to the person who sent it, where they clicked."""
    from tests.support.flows import open_request_form, submit_request

    async def broken(**_: object) -> None:
        raise RuntimeError("the store is gone")

    monkeypatch.setattr(bot.runtime.requests, "file_request", broken)
    view, response_url = await open_request_form(bot, "julie2")
    await submit_request(bot, view, "Joins the team.")
    told = [json.dumps(message) for message in await bot.slack.wait_for_response(response_url)]
    assert any("Something went wrong while filing your request" in text for text in told)
