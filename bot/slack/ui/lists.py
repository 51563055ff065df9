"""Lists of requests: `/connect-user pending` (what waits for an approver, oldest first) and
`/connect-user status` (the caller's own requests), and the rows the Home tab shares with them.
A list shows whole rows while Slack's limits allow and counts the rest."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from bot.slack.ui.buttons import cancel_button
from bot.slack.ui.describe import access_summary, decided, status_words, who
from bot.slack.ui.ids import ACTION_REQUEST_UNLOCK
from bot.slack.ui.kit import (
    Block,
    Message,
    button,
    context,
    fit_rows,
    header,
    md,
    message,
    more,
    section_md,
    section_plain,
)
from bot.slack.ui.limits import MAX_MESSAGE_BLOCKS
from bot.slack.ui.text import LIST_JUSTIFICATION, clip, link, mention, slack_date
from bot.slack.ui.values import is_account_guid
from bot.workflow.models import ProvisioningRequest, RequestKind
from bot.workflow.states import RequestState

# How many requests the lists ask the store for; the builders show what fits and count the rest.
PENDING_LIST_LIMIT = 20
STATUS_LIST_LIMIT = 15


def waiting_summary(req: ProvisioningRequest) -> Block:
    why = clip(req.justification, LIST_JUSTIFICATION, multiline=True) or "(none)"
    return section_plain(f"{who(req)}\n{access_summary(req)}\nWhy: {why}")


def waiting_context(req: ProvisioningRequest, permalink: str | None) -> Block:
    parts = [f"Requested by {mention(req.requester_id)}"]
    if req.created_at:
        parts[0] += f" {slack_date(req.created_at)}"
    parts.append(link(permalink, "Open the card") or "the card was not posted")
    return context(md(" · ".join(parts)))


def status_row(
    req: ProvisioningRequest, permalink: str | None, *, cancellable: bool = True
) -> list[Block]:
    """One of the requester's own requests: who for, its state, its kind and roles (asked,
    granted), a Cancel button while pending."""
    summary = section_plain(f"{who(req)}: {status_words(req.state)}\n{access_summary(req)}")
    if cancellable and req.state is RequestState.PENDING:
        summary["accessory"] = cancel_button(req)
    elif (
        req.kind is RequestKind.LOCK
        and req.state is RequestState.APPROVED
        and is_account_guid(req.connect_guid)
    ):
        # As the bot left it: the unlock request reads the account from Connect again.
        summary["text"]["text"] += "\nThe account is locked."
        summary["accessory"] = button(
            "Request unlock", action_id=ACTION_REQUEST_UNLOCK, value=str(req.connect_guid)
        )
    parts = []
    if req.created_at:
        parts.append(f"Requested {slack_date(req.created_at)}")
    if req.decided_by and req.state in (
        RequestState.APPROVED,
        RequestState.ALREADY_EXISTS,
        RequestState.DENIED,
        RequestState.INCOMPLETE,
        RequestState.CLOSED,
    ):
        parts.append(f"decided by {decided(req)}")
    view = link(permalink, "View the request")
    if view:
        parts.append(view)
    return [summary, context(md(" · ".join(parts)))] if parts else [summary]


def pending_message(
    requests: Sequence[ProvisioningRequest],
    *,
    total: int,
    permalinks: Mapping[str, str | None],
) -> Message:
    """`/connect-user pending`: what waits for a decision, oldest first, linked to the cards."""
    total = max(total, len(requests))
    if not requests:
        return message(
            "Nothing is waiting for approval",
            [section_md(":white_check_mark: Nothing is waiting for approval.")],
        )
    head = [header(f"Waiting for approval ({total})")]
    rows = (
        [waiting_summary(req), waiting_context(req, permalinks.get(req.id))] for req in requests
    )
    blocks, _ = fit_rows(
        head,
        rows,
        lambda n: more(total, n, "The oldest are listed first."),
        max_blocks=MAX_MESSAGE_BLOCKS,
    )
    fallback = f"{total} request{'' if total == 1 else 's'} waiting for approval"
    return message(fallback, blocks)


def status_message(
    requests: Sequence[ProvisioningRequest],
    *,
    total: int,
    permalinks: Mapping[str, str | None],
) -> Message:
    """`/connect-user status`: the caller's own requests, most recent first."""
    total = max(total, len(requests))
    if not requests:
        return message(
            "You have not requested any Connect access",
            [
                section_md(
                    "You haven't requested any Connect access yet. Find someone with "
                    "`/connect-user search &lt;prefix&gt;`."
                )
            ],
        )
    head = [header("Your Connect requests")]
    rows = (status_row(req, permalinks.get(req.id)) for req in requests)
    blocks, shown = fit_rows(
        head,
        rows,
        lambda n: more(total, n, "Older ones are not shown."),
        max_blocks=MAX_MESSAGE_BLOCKS,
    )
    fallback = f"Your Connect requests: {shown} of {total}"
    return message(fallback, blocks)
