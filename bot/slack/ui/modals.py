"""The modals: why a person needs an account (the requester), why a request is denied (the
approver), and what replaces a form the bot no longer understands."""

from __future__ import annotations

from bot.slack.ui.describe import person_text
from bot.slack.ui.ids import (
    DENY_REASON_BLOCK,
    DENY_REASON_INPUT,
    JUSTIFICATION_BLOCK,
    JUSTIFICATION_INPUT,
    VIEW_DENY_REASON,
    VIEW_JUSTIFICATION,
)
from bot.slack.ui.kit import View, context, md, plain, section_md, section_plain
from bot.slack.ui.limits import MAX_PRIVATE_METADATA
from bot.slack.ui.text import USERNAME, clip
from bot.slack.ui.values import PersonValue

JUSTIFICATION_MIN_LENGTH = 3
JUSTIFICATION_MAX_LENGTH = 1000
DENY_REASON_MAX_LENGTH = 500


def _check_metadata(private_metadata: str) -> None:
    # Cutting would corrupt what the submission handler reads back: refuse loudly instead.
    if len(private_metadata) > MAX_PRIVATE_METADATA:
        raise ValueError("private_metadata longer than Slack allows")


def justification_modal(*, person: PersonValue, private_metadata: str) -> View:
    """Ask the requester why; raises ValueError if private_metadata is over 3,000 chars."""
    _check_metadata(private_metadata)
    return {
        "type": "modal",
        "callback_id": VIEW_JUSTIFICATION,
        "title": plain("Request account"),
        "submit": plain("Send request"),
        "close": plain("Cancel"),
        "private_metadata": private_metadata,
        "blocks": [
            section_md("Request a Posit Connect account for:"),
            section_plain(person_text(person.full_name, person.username, person.email)),
            {
                "type": "input",
                "block_id": JUSTIFICATION_BLOCK,
                "label": plain("Why do they need an account?"),
                "element": {
                    "type": "plain_text_input",
                    "action_id": JUSTIFICATION_INPUT,
                    "multiline": True,
                    "min_length": JUSTIFICATION_MIN_LENGTH,
                    "max_length": JUSTIFICATION_MAX_LENGTH,
                    "placeholder": plain("e.g. joins the forecasting team and publishes reports"),
                },
            },
            context(md("The approvers see this with your name before they decide.")),
        ],
    }


def outdated_form_view() -> View:
    """Shown in place of a form the bot no longer understands."""
    return {
        "type": "modal",
        "title": plain("Form out of date"),
        "close": plain("Close"),
        "blocks": [
            section_md(
                "This form is no longer supported. Close it and start again with "
                "`/connect-user search &lt;prefix&gt;`."
            )
        ],
    }


def deny_modal(*, request_id: str, username: str) -> View:
    """Ask an approver why they deny; private_metadata is the request id."""
    _check_metadata(request_id)
    return {
        "type": "modal",
        "callback_id": VIEW_DENY_REASON,
        "title": plain("Deny request"),
        "submit": plain("Deny"),
        "close": plain("Cancel"),
        "private_metadata": request_id,
        "blocks": [
            section_plain(f"Deny the account request for {clip(username, USERNAME)}?"),
            {
                "type": "input",
                "block_id": DENY_REASON_BLOCK,
                "label": plain("Reason (the requester will see it)"),
                "element": {
                    "type": "plain_text_input",
                    "action_id": DENY_REASON_INPUT,
                    "multiline": True,
                    "min_length": 1,
                    "max_length": DENY_REASON_MAX_LENGTH,
                },
            },
        ],
    }
