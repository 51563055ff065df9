"""The buttons that act on a request: Approve and Deny (on the card and the Home tab), Cancel
(under the requester's confirmation, in their status list and on their Home tab)."""

from __future__ import annotations

from typing import Any

from bot.slack.ui.ids import (
    ACTION_APPROVE,
    ACTION_APPROVE_WITH_NOTE,
    ACTION_CANCEL,
    ACTION_CLOSE,
    ACTION_DENY,
    ACTION_KEEP,
    ACTION_RETRY,
)
from bot.slack.ui.kit import Block, button
from bot.slack.ui.limits import MAX_ID
from bot.workflow.models import ProvisioningRequest, StepAction


def decision_actions(req: ProvisioningRequest, *, block_id: str) -> Block:
    """An actions block with Approve and Deny, each carrying the request id. A request that
    sets a role opens a confirmation on Approve (with a note); one that sets none is approved
    by the click, so it also gets "Approve with note"."""
    elements = [button("Approve", action_id=ACTION_APPROVE, value=req.id, style="primary")]
    if req.step(StepAction.SET_ROLE) is None:
        elements.append(
            button("Approve with note", action_id=ACTION_APPROVE_WITH_NOTE, value=req.id)
        )
    elements.append(button("Deny", action_id=ACTION_DENY, value=req.id, style="danger"))
    return {"type": "actions", "block_id": block_id[:MAX_ID], "elements": elements}


def lock_or_keep_actions(request_id: str, *, block_id: str) -> Block:
    """The deactivation card's choice: Lock approves the lock, Keep declines it (both through
    the same checks as Approve and Deny)."""
    return {
        "type": "actions",
        "block_id": block_id[:MAX_ID],
        "elements": [
            button("Lock", action_id=ACTION_APPROVE, value=request_id, style="danger"),
            button("Keep", action_id=ACTION_KEEP, value=request_id),
        ],
    }


def retry_actions(request_id: str, *, block_id: str) -> Block:
    """Retry of the step that failed, alone (the steps done stay done), or close the request as
    it stands when the step cannot succeed."""
    return {
        "type": "actions",
        "block_id": block_id[:MAX_ID],
        "elements": [
            button("Retry the failed step", action_id=ACTION_RETRY, value=request_id),
            button("Close as it is", action_id=ACTION_CLOSE, value=request_id),
        ],
    }


def cancel_button(req: ProvisioningRequest) -> dict[str, Any]:
    return button("Cancel request", action_id=ACTION_CANCEL, value=req.id)
