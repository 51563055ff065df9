"""Lock and unlock through the approval gate, end to end through signed requests against the
fake Slack and fake Connect: `/connect-user lock|unlock <username> <why>` files a request, the
card is decided by an approver (checked at click time), the account is locked exactly once
(also under concurrent clicks and after an answer that never came), a full licence refuses an
unlock in words, and a key that is not an administrator's says lock and unlock are
unavailable."""

from __future__ import annotations

import asyncio

import httpx

from bot.slack.ui import ids
from bot.workflow.models import RequestKind, StepStatus
from bot.workflow.states import RequestState
from tests.support.blockkit import assert_valid_view
from tests.support.bot_under_test import (
    APPROVER,
    APPROVER_2,
    APPROVER_CHANNEL,
    REQUESTER,
    BotUnderTest,
    response_text,
)
from tests.support.flows import (
    approve,
    card_request_id,
    command,
    dms_to,
    home_click,
    latest_card,
    open_home,
)


def lock_calls(bot: BotUnderTest) -> int:
    return bot.connect.count("POST", "v1/users/*/lock")


async def file_lock(bot: BotUnderTest, text: str, user_id: str = REQUESTER) -> tuple[dict, str]:
    """Run the command; returns (its answer, the request id on the card it posted)."""
    posted = bot.slack.count("chat.postMessage")
    answer = await command(bot, text, user_id)
    cards = bot.slack.calls_to("chat.postMessage")[posted:]
    [card] = [c for c in cards if c.args["channel"] == APPROVER_CHANNEL]
    return answer, card_request_id(card.args)


async def test_lock_is_filed_decided_at_click_time_and_carried_out(bot: BotUnderTest) -> None:
    answer, request_id = await file_lock(bot, "lock julie1 Left the company last week")
    assert "sent to the approvers" in response_text(answer)
    request = await bot.runtime.store.get(request_id)
    assert request.kind is RequestKind.LOCK and request.requester_id == REQUESTER
    assert request.connect_guid == bot.connect.get_local_user("julie1")["guid"]
    card = response_text(latest_card(bot))
    assert "asks to lock the Posit Connect account" in card
    assert "Left the company last week" in card

    # The requester may not decide their own request: nothing is locked.
    await approve(bot, request_id, user_id=REQUESTER)
    assert lock_calls(bot) == 0
    assert (await bot.runtime.store.get(request_id)).state is RequestState.PENDING

    await approve(bot, request_id)
    request = await bot.runtime.store.get(request_id)
    assert request.state is RequestState.APPROVED
    assert request.lock_step is not None and request.lock_step.status is StepStatus.DONE
    assert bot.connect.get_local_user("julie1")["locked"] is True
    assert lock_calls(bot) == 1
    assert "the account is locked" in response_text(latest_card(bot))
    [dm] = dms_to(bot, REQUESTER)
    assert "is now locked" in response_text(dm)


async def test_a_lock_for_an_unknown_or_locked_account_is_not_filed(bot: BotUnderTest) -> None:
    answer = await command(bot, "lock nobody1 Left", REQUESTER)
    assert "nobody1 has no Connect account" in response_text(answer)
    bot.connect.add_local_user("julie3", "Julie", "Three", locked=True)
    answer = await command(bot, "lock julie3 Left", REQUESTER)
    assert "locked already" in response_text(answer)
    answer = await command(bot, "unlock julie1 Back", REQUESTER)
    assert "is not locked" in response_text(answer)
    assert bot.slack.count("chat.postMessage") == 0
    answer = await command(bot, "lock julie1", REQUESTER)
    assert "please say why" in response_text(answer)


async def test_a_second_lock_for_the_same_account_finds_the_first(bot: BotUnderTest) -> None:
    _, request_id = await file_lock(bot, "lock julie1 Left")
    answer = await command(bot, "lock julie1 Left too", APPROVER)
    assert "already asked for locking the account" in response_text(answer)
    [active] = await bot.runtime.store.list_requests(states={RequestState.PENDING})
    assert active.id == request_id


async def test_concurrent_lock_clicks_lock_once(bot: BotUnderTest) -> None:
    _, request_id = await file_lock(bot, "lock julie1 Left")
    responses = await asyncio.gather(
        *(
            bot.click(ids.ACTION_APPROVE, request_id, user_id=approver)
            for approver in (APPROVER, APPROVER_2, APPROVER, APPROVER_2)
        )
    )
    assert all(response.status_code == 200 for response, _ in responses)
    await bot.settle()
    assert lock_calls(bot) == 1
    assert (await bot.runtime.store.get(request_id)).state is RequestState.APPROVED


async def test_an_unanswered_lock_is_looked_at_before_anything_is_sent_again(
    bot: BotUnderTest,
) -> None:
    _, request_id = await file_lock(bot, "lock julie1 Left")
    bot.connect.write_mode("POST v1/users/*/lock", "commit_then_500")
    await approve(bot, request_id)
    request = await bot.runtime.store.get(request_id)
    assert request.state is RequestState.APPROVED, request.last_error
    assert lock_calls(bot) == 1, "the account was read, not locked again"
    assert bot.connect.get_local_user("julie1")["locked"] is True


async def test_an_unlock_refused_for_want_of_a_seat_says_so_in_words(bot: BotUnderTest) -> None:
    bot.connect.add_local_user("julie3", "Julie", "Three", locked=True)
    bot.connect.license["users"] = 2  # the key's owner and julie1 take both seats
    _, request_id = await file_lock(bot, "unlock julie3 Back from leave")
    card = response_text(latest_card(bot))
    assert "asks to unlock" in card
    assert "Connect will refuse to unlock this account until a seat is freed" in card
    response_url = await approve(bot, request_id)

    request = await bot.runtime.store.get(request_id)
    assert request.state is RequestState.PENDING
    card = response_text(latest_card(bot))
    assert "no free seats" in card and "Connect code 64" in card
    answer = response_text((await bot.slack.wait_for_response(response_url))[-1])
    assert "no free seats" in answer
    assert bot.connect.get_local_user("julie3")["locked"] is True

    bot.connect.license["users"] = 3
    await approve(bot, request_id)
    assert (await bot.runtime.store.get(request_id)).state is RequestState.APPROVED
    assert bot.connect.get_local_user("julie3")["locked"] is False


async def test_without_an_administrators_key_lock_and_unlock_are_unavailable(
    bot: BotUnderTest,
) -> None:
    bot.connect.key_role = "publisher"
    for text in ("lock julie1 Left", "unlock julie1 Back"):
        answer = await command(bot, text, REQUESTER)
        assert "Locking and unlocking are unavailable" in response_text(answer)
    assert bot.slack.count("chat.postMessage") == 0
    assert lock_calls(bot) == 0


# -- locked accounts in search results and on the Home tab ------------------------------------


def unlock_buttons(blocks: list[dict]) -> list[str]:
    return [
        block["accessory"]["value"]
        for block in blocks
        if (block.get("accessory") or {}).get("action_id") == ids.ACTION_REQUEST_UNLOCK
    ]


async def submit_lock_form(bot: BotUnderTest, view: dict, justification: str) -> None:
    values = {ids.JUSTIFICATION_BLOCK: {ids.JUSTIFICATION_INPUT: justification}}
    response = await bot.submit(
        ids.VIEW_LOCK_REQUEST, values, view["private_metadata"], user_id=REQUESTER
    )
    assert response.status_code == 200
    await bot.settle()


async def test_search_shows_a_locked_account_with_request_unlock(bot: BotUnderTest) -> None:
    julie3 = bot.connect.add_local_user("julie3", "Julie", "Three", locked=True)
    message = await command(bot, "search julie", REQUESTER)
    assert "Role: Viewer · locked" in response_text(message)
    assert unlock_buttons(message["blocks"]) == [julie3]

    opened = bot.slack.count("views.open")
    response, response_url = await bot.click(
        ids.ACTION_REQUEST_UNLOCK, julie3, user_id=REQUESTER, ephemeral=True, channel_id="CGEN"
    )
    assert response.status_code == 200
    view = (await bot.slack.wait_for("views.open", count=opened + 1))[-1].args["view"]
    assert_valid_view(view)
    assert view["callback_id"] == ids.VIEW_LOCK_REQUEST and "unlock" in response_text(view)
    await submit_lock_form(bot, view, "Back from parental leave")

    [request] = await bot.runtime.store.list_requests(states={RequestState.PENDING})
    assert request.kind is RequestKind.UNLOCK and request.connect_guid == julie3
    assert "asks to unlock" in response_text(latest_card(bot))
    confirmation = (await bot.slack.wait_for_response(response_url))[-1]
    assert "sent to the approvers" in response_text(confirmation)


async def test_the_home_tab_shows_a_locked_account_with_request_unlock(
    bot: BotUnderTest,
) -> None:
    _, request_id = await file_lock(bot, "lock julie1 Left")
    await approve(bot, request_id)
    guid = bot.connect.get_local_user("julie1")["guid"]
    home = await open_home(bot, REQUESTER)
    assert home is not None
    assert "The account is locked." in response_text(home)
    assert unlock_buttons(home["blocks"]) == [guid]

    opened = bot.slack.count("views.open")
    await home_click(bot, ids.ACTION_REQUEST_UNLOCK, guid, REQUESTER)
    view = (await bot.slack.wait_for("views.open", count=opened + 1))[-1].args["view"]
    await submit_lock_form(bot, view, "Came back")
    [request] = await bot.runtime.store.list_requests(states={RequestState.PENDING})
    assert request.kind is RequestKind.UNLOCK and request.connect_guid == guid
    [_, confirmation] = dms_to(bot, REQUESTER)  # the lock's outcome, then this confirmation
    assert "sent to the approvers" in response_text(confirmation)


# -- outcomes Connect did not say, and a bot that stopped mid-way --------------------------------


async def test_a_lock_that_connect_never_carried_out_waits_for_a_retry_that_looks_first(
    bot: BotUnderTest,
) -> None:
    _, request_id = await file_lock(bot, "lock julie1 Left")
    bot.connect.hang_seconds = 3.0
    bot.connect.write_mode("POST v1/users/*/lock", "hang")  # no answer, and nothing done
    await approve(bot, request_id)
    request = await bot.runtime.store.get(request_id)
    # Connect may still carry it out: incomplete (nobody re-decides it), not pending.
    assert request.state is RequestState.INCOMPLETE, request.last_error
    assert "may not have been locked" in (request.last_error or "")
    assert bot.connect.get_local_user("julie1")["locked"] is False

    bot.connect.write_mode("POST v1/users/*/lock", "normal")
    calls = lock_calls(bot)
    response, _ = await bot.click(ids.ACTION_RETRY, request_id, user_id=APPROVER)
    assert response.status_code == 200
    await bot.settle()
    assert (await bot.runtime.store.get(request_id)).state is RequestState.APPROVED
    assert lock_calls(bot) == calls + 1
    assert bot.connect.get_local_user("julie1")["locked"] is True


async def test_a_lock_connect_carried_out_late_is_found_and_not_sent_again(
    bot: BotUnderTest,
) -> None:
    _, request_id = await file_lock(bot, "lock julie1 Left")
    bot.connect.commit_delay = 2.5  # after the bot stopped waiting (CONNECT_TIMEOUT 2 s)
    bot.connect.write_mode("POST v1/users/*/lock", "commit_late")
    await approve(bot, request_id)
    request = await bot.runtime.store.get(request_id)
    assert request.state is RequestState.APPROVED, request.last_error
    assert lock_calls(bot) == 1


async def recover_after_a_crash(bot: BotUnderTest, request_id: str) -> None:
    """As if the approving process died holding the lease: claimed, and its lease run out."""
    request = await bot.runtime.store.get(request_id)
    claimed = await bot.runtime.store.transition(
        request_id,
        from_states={RequestState.PENDING},
        to_state=RequestState.PROVISIONING,
        now=request.created_at,
        changes={"lease_owner": "a-dead-replica", "decided_by": APPROVER},
        lease_seconds=0.05,
    )
    assert claimed is not None
    await asyncio.sleep(0.2)
    await bot.runtime.provisioner.recover_expired_leases()
    await bot.settle()


async def test_recovery_locks_once_after_a_crash_before_the_call(bot: BotUnderTest) -> None:
    _, request_id = await file_lock(bot, "lock julie1 Left")
    await recover_after_a_crash(bot, request_id)
    assert (await bot.runtime.store.get(request_id)).state is RequestState.APPROVED
    assert lock_calls(bot) == 1
    assert bot.connect.get_local_user("julie1")["locked"] is True


async def test_recovery_after_a_crash_after_the_call_reads_the_account_first(
    bot: BotUnderTest,
) -> None:
    _, request_id = await file_lock(bot, "lock julie1 Left")
    # Connect locked it; the process died before it recorded so.
    guid = bot.connect.get_local_user("julie1")["guid"]
    async with httpx.AsyncClient() as connect:
        answer = await connect.post(
            f"{bot.connect.url.rstrip('/')}/__api__/v1/users/{guid}/lock",
            json={"locked": True},
            headers={"Authorization": f"Key {bot.connect.api_key}"},
        )
    assert answer.status_code == 200
    calls = lock_calls(bot)
    await recover_after_a_crash(bot, request_id)
    request = await bot.runtime.store.get(request_id)
    assert request.state is RequestState.APPROVED
    assert request.outcome_note == "The account was locked already."
    assert lock_calls(bot) == calls, "read, not locked again"
