"""The approval confirmation is submitted: approve, granting the role chosen (a request that sets
a role) with the approver's note. The role comes back from the approver's client: one outside
REQUESTABLE_ROLES is refused in the form; the workflow checks the approver and the role again,
and a role above the one asked is a new question (RoleRaised). The card shows the outcome; the
approver is told the rest where they clicked (ephemeral in the channel, their Home tab, else a
DM)."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck

from bot.slack.approval import FAILURE, approve_and_answer
from bot.slack.interactions import Click, view_input, view_selected
from bot.slack.listeners.deps import Listener, ListenerDeps
from bot.slack.ui import ids
from bot.slack.ui.values import decode_approval_metadata

ROLE_ERROR = "That role cannot be granted through the bot. Please choose one of those offered."
OUTDATED = "This form is out of date. Close it and press Approve on the card again."


def listener(deps: ListenerDeps) -> Listener:
    async def approve_submitted(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        form = decode_approval_metadata(str(view.get("private_metadata") or ""))
        if form is None:
            await ack(response_action="errors", errors={ids.ROLE_BLOCK: OUTDATED})
            return
        # A request that sets no role asked for none when the form opened (it had no role
        # choice); the workflow refuses a role for such a request anyway.
        role = None
        if form.role_asked is not None:
            role = view_selected(view, ids.ROLE_BLOCK, ids.ROLE_INPUT)
            if role is None or role not in deps.requests.requestable_roles:
                await ack(response_action="errors", errors={ids.ROLE_BLOCK: ROLE_ERROR})
                return
        note = view_input(view, ids.APPROVAL_NOTE_BLOCK, ids.APPROVAL_NOTE_INPUT) or None
        await ack()
        click = Click(
            value=form.request_id,
            user_id=body["user"]["id"],
            response_url=form.response_url,
            channel=form.channel or deps.approver_channel,
            from_home=form.from_home,
        )
        deps.after_click(
            click,
            approve_and_answer(
                deps.requests,
                deps.client,
                deps.home,
                click,
                role=role,
                seen=form.role_asked,
                note=note,
            ),
            name="approve-role",
            failure=FAILURE,
        )

    return approve_submitted
