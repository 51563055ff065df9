"""The App Home tab: "My requests" and, for approvers, "Waiting for approval" with the same
Approve/Deny buttons as the cards (the same listeners decide them)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import assert_never

from bot.slack.ui.buttons import decision_actions, lock_or_keep_actions, retry_actions
from bot.slack.ui.describe import account_standing, step_words
from bot.slack.ui.ids import (
    ACTION_REQUEST_MINE,
    HOME_DECIDE_BLOCK_PREFIX,
    OWN_ACCOUNT_ACTIONS_BLOCK,
)
from bot.slack.ui.kit import (
    Block,
    Message,
    View,
    blocks_json_len,
    button,
    context,
    divider,
    fit_rows,
    header,
    md,
    more,
    plain,
    section_md,
)
from bot.slack.ui.limits import BLOCKS_JSON_BUDGET, MAX_VIEW_BLOCKS
from bot.slack.ui.lists import status_row, waiting_context, waiting_summary
from bot.slack.ui.refusals import not_a_decider
from bot.slack.ui.text import ERROR, USERNAME, clip
from bot.workflow.models import DirectoryEntry, ProvisioningRequest, filed_by_bot
from bot.workflow.outcomes import Refusal
from bot.workflow.states import RequestState

# How many requests the Home tab asks the store for, per list.
HOME_MINE_LIMIT = 10
HOME_WAITING_LIMIT = 20


def _decide_row(req: ProvisioningRequest, permalink: str | None, viewer_id: str) -> list[Block]:
    row = [waiting_summary(req), waiting_context(req, permalink)]
    if req.requester_id == viewer_id:
        # The server would refuse anyway; not offering the buttons says why up front.
        row.append(context(md("This is your own request: another approver has to decide.")))
        return row
    if req.subject_id == viewer_id:
        row.append(context(md("This request is for your own access: another approver decides.")))
        return row
    if req.state is RequestState.INCOMPLETE:
        # Approved, but a step failed: what waits on an approver is a retry of that step.
        row.append(step_line(req))
        row.append(retry_actions(req.id, block_id=HOME_DECIDE_BLOCK_PREFIX + req.id))
        return row
    if filed_by_bot(req.requester_id):  # the bot asks whether to lock: Lock or Keep, as on the card
        row.append(lock_or_keep_actions(req.id, block_id=HOME_DECIDE_BLOCK_PREFIX + req.id))
        return row
    row.append(decision_actions(req, block_id=HOME_DECIDE_BLOCK_PREFIX + req.id))
    return row


def step_line(req: ProvisioningRequest) -> Block:
    failed = req.failed_step
    what = step_words(failed.action, req) if failed else "A step"
    why = clip(req.last_error or (failed.error if failed else None), ERROR, multiline=True)
    return context(plain(f"{what} failed" + (f": {why}" if why else ".")))


def _not_waiting(reason: Refusal) -> list[Block]:
    """Why the viewer sees no waiting list, when they should be told."""
    match reason:
        case Refusal.CANNOT_CHECK:
            return [
                context(
                    md(
                        "I couldn't check whether you are an approver just now, so requests "
                        "waiting for approval are not shown. Open this tab again in a minute."
                    )
                )
            ]
        case (
            Refusal.GUEST
            | Refusal.EXTERNAL
            | Refusal.BOT
            | Refusal.DEACTIVATED
            | Refusal.UNSAFE_CHANNEL
        ):
            what = "see or decide the requests waiting for approval"
            return [context(md(not_a_decider(reason, what=what)))]
        case (
            Refusal.NOT_APPROVER  # not in the approver channel: approvals are not their business
            | Refusal.NOT_IN_USERGROUP
            | Refusal.NOT_ADMIN_APPROVER
            | Refusal.NOT_FOUND
            | Refusal.SELF_APPROVAL
            | Refusal.SUBJECT
            | Refusal.ALREADY_DECIDED
            | Refusal.NOT_REQUESTER
            | Refusal.ROLE_NOT_REQUESTABLE
            | Refusal.NOTHING_TO_RETRY
            | Refusal.ROLE_CHANGED
            | Refusal.ALREADY_APPROVED
        ):
            return []
        case _:
            assert_never(reason)


def home_view(
    *,
    viewer_id: str,
    mine: Sequence[ProvisioningRequest],
    mine_total: int,
    waiting: Sequence[ProvisioningRequest] | None,
    waiting_total: int = 0,
    waiting_refusal: Refusal | None = None,
    permalinks: Mapping[str, str | None],
    notice: Message | None = None,
    own_account: DirectoryEntry | None = None,
) -> View:
    """The App Home tab: "My requests" and, for approvers (`waiting` not None), "Waiting for
    approval" with the same Approve/Deny buttons as the cards (the same handlers decide them).

    `notice` is a message from the renderers (a refusal, an outcome) shown at the top: Home tab
    clicks have no response_url, so the answer to a click is shown where it was made.
    `waiting_refusal` says why `waiting` is None; the viewer is told when it is about them
    (a guest, from another organisation, …) or when it could not be checked. `own_account`: the
    viewer's Connect account when it is known they have one; otherwise they are offered
    "Request my Connect account".
    """
    head: list[Block] = [header("Posit Connect accounts")]
    if notice:
        head.extend(notice.get("blocks") or [])
        head.append(divider())
    if own_account is not None:
        head.append(
            context(
                plain(
                    f"Your Posit Connect account: {clip(own_account.username, USERNAME)} · "
                    + account_standing(own_account.user_role, own_account.locked)
                )
            )
        )
    else:
        head.append(
            {
                "type": "actions",
                "block_id": OWN_ACCOUNT_ACTIONS_BLOCK,
                "elements": [
                    button("Request my Connect account", action_id=ACTION_REQUEST_MINE, value="me")
                ],
            }
        )
    head.append(
        context(
            md(
                "Ask for an account for someone else with `/connect-user search &lt;prefix&gt;`; "
                "`/connect-user help` lists every command."
            )
        )
    )

    mine_total = max(mine_total, len(mine))
    head.append(header("My requests"))
    if not mine:
        head.append(section_md("You haven't requested any accounts yet."))
        blocks = head
    else:
        # Approvers need room for what waits on them: their own list gets at most half.
        spare = BLOCKS_JSON_BUDGET - blocks_json_len(head)
        budget = BLOCKS_JSON_BUDGET if waiting is None else BLOCKS_JSON_BUDGET - spare // 2
        blocks, _ = fit_rows(
            head,
            (status_row(req, permalinks.get(req.id)) for req in mine),
            lambda n: more(mine_total, n, "`/connect-user status` lists them."),
            max_blocks=MAX_VIEW_BLOCKS // 2 if waiting is not None else MAX_VIEW_BLOCKS,
            budget=budget,
        )

    if waiting is not None:
        waiting_total = max(waiting_total, len(waiting))
        blocks = [*blocks, divider(), header(f"Waiting for approval ({waiting_total})")]
        if not waiting:
            blocks.append(section_md(":white_check_mark: Nothing is waiting for approval."))
        else:
            blocks, _ = fit_rows(
                blocks,
                (_decide_row(req, permalinks.get(req.id), viewer_id) for req in waiting),
                lambda n: more(waiting_total, n, "`/connect-user pending` lists them all."),
                max_blocks=MAX_VIEW_BLOCKS,
            )
    elif waiting_refusal is not None:
        blocks.extend(_not_waiting(waiting_refusal))
    return {"type": "home", "blocks": blocks}
