"""The form for several people is submitted: file a request for each (the workflow reads each
from the directory again), sharing cards; tell the requester what was filed and what was not."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck

from bot.slack import respond
from bot.slack.interactions import view_input, view_selected
from bot.slack.listeners.deps import Listener, ListenerDeps
from bot.slack.ui import ids
from bot.slack.ui.batch_request import batch_filed_message, decode_batch_metadata
from bot.slack.ui.refusals import file_problem_message, refusal_message
from bot.workflow.outcomes import NotFiled

OUTDATED = "This form is out of date. Close it and ask again with /connect-user request."
ROLE_ERROR = "That role cannot be asked for here. Please choose one of the roles offered."


def listener(deps: ListenerDeps) -> Listener:
    async def batch_submitted(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        justification = view_input(view, ids.JUSTIFICATION_BLOCK, ids.JUSTIFICATION_INPUT).strip()
        if not justification:
            await ack(
                response_action="errors",
                errors={ids.JUSTIFICATION_BLOCK: "Please say why these people need accounts."},
            )
            return
        usernames, response_url = decode_batch_metadata(str(view.get("private_metadata") or ""))
        if usernames is None:
            await ack(response_action="errors", errors={ids.JUSTIFICATION_BLOCK: OUTDATED})
            return
        role = view_selected(view, ids.ROLE_BLOCK, ids.ROLE_INPUT)
        if role is not None and role not in deps.requests.requestable_roles:
            await ack(response_action="errors", errors={ids.ROLE_BLOCK: ROLE_ERROR})
            return
        await ack()
        user_id = body["user"]["id"]

        async def report_failure(_: BaseException) -> None:
            await respond.privately(
                deps.client,
                user_id=user_id,
                message=refusal_message(
                    "Something went wrong while filing the requests. `/connect-user status` "
                    "shows which were filed."
                ),
                response_url=response_url,
            )

        async def file() -> None:
            if await deps.refuse_unless_searcher(user_id, response_url):
                return
            outcome = await deps.batches.file(
                requester_id=user_id, usernames=usernames, justification=justification, role=role
            )
            if isinstance(outcome, NotFiled):
                message = file_problem_message(outcome.problem, username=usernames[0])
            else:
                message = batch_filed_message(outcome)
            await respond.privately(
                deps.client, user_id=user_id, message=message, response_url=response_url
            )

        deps.supervisor.spawn(file(), name="file-batch", on_error=report_failure)

    return batch_submitted
