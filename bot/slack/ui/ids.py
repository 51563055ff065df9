"""The ids Slack sends back with a click or a submission, which the listeners match on."""

from __future__ import annotations

# action_id of each button
ACTION_REQUEST_ACCOUNT = "request_account"
ACTION_APPROVE = "approve_request"
# A request that sets no role: Approve decides at once; this opens the confirmation for a note.
ACTION_APPROVE_WITH_NOTE = "approve_with_note"
ACTION_DENY = "deny_request"
ACTION_CANCEL = "cancel_request"
ACTION_CHANGE_ROLE = "change_role"  # on an account in search results; value: the account's GUID
ACTION_RETRY = "retry_step"
ACTION_CLOSE = "close_incomplete"
# On a batch's card: decide every pending request of its part; value: "<batch id>:<part>"
ACTION_APPROVE_ALL = "approve_all"
ACTION_DENY_ALL = "deny_all"
# Under the list a requester's names resolved to: open the form for the ready ones
ACTION_REQUEST_BATCH = "request_batch"
# "Request my Connect account", on the Home tab
ACTION_REQUEST_MINE = "request_my_account"
ACTION_KEEP = "keep_account"  # on the deactivation card: decline the lock; value: request id
# on a locked account (search results, the Home tab); value: the account's GUID
ACTION_REQUEST_UNLOCK = "request_unlock"
# seats nobody uses: lock one (files a lock request); value: the account's GUID
ACTION_REQUEST_LOCK = "request_lock"
# the seats list's other pages; value: the page number (Previous and Next: one id each, as one
# actions block may not repeat an action_id)
ACTION_SEATS_PAGE = "seats_page"
ACTION_SEATS_NEXT_PAGE = "seats_page_next"
# On a directory group in `group search` results; value: the group's name
ACTION_REQUEST_GROUP = "request_group"
# On an account in search results (where the bot may add members); value: the account's GUID
ACTION_JOIN_GROUPS = "join_groups"

# callback_id of each modal
VIEW_JUSTIFICATION = "justification_modal"
VIEW_DENY_REASON = "deny_reason_modal"
VIEW_ROLE_CHANGE = "role_change_modal"
VIEW_APPROVE = "approve_modal"
VIEW_BATCH_REQUEST = "batch_request_modal"
VIEW_DENY_ALL = "deny_all_modal"
VIEW_LOCK_REQUEST = "lock_request_modal"  # the justification for a lock or an unlock
VIEW_GROUP_REQUEST = "group_request_modal"
VIEW_JOIN_GROUPS = "join_groups_modal"

# view_submission: state.values[JUSTIFICATION_BLOCK][JUSTIFICATION_INPUT]["value"]
JUSTIFICATION_BLOCK = "justification_block"
JUSTIFICATION_INPUT = "justification_input"
DENY_REASON_BLOCK = "deny_reason_block"
DENY_REASON_INPUT = "deny_reason_input"
# state.values[ROLE_BLOCK][ROLE_INPUT]["selected_option"]["value"]: the role chosen, in the
# request form, the role-change form and the approver's confirmation
ROLE_BLOCK = "role_block"
ROLE_INPUT = "role_input"
# The approver's optional note in the approval confirmation
APPROVAL_NOTE_BLOCK = "approval_note_block"
APPROVAL_NOTE_INPUT = "approval_note_input"

# block_id of the card's Approve/Deny actions block
APPROVAL_ACTIONS_BLOCK = "approval_actions"
# block_id of the card's Retry button (an incomplete request)
RETRY_ACTIONS_BLOCK = "retry_actions"
# block_id of Change role in the modal telling someone they have an account already
OWN_ACCOUNT_ACTIONS_BLOCK = "own_account_actions"
# block_id of a batch card's Approve all / Deny all, and prefix of each person's buttons there
BATCH_ACTIONS_BLOCK = "batch_actions"
BATCH_MEMBER_BLOCK_PREFIX = "batch_decide:"
# block_id of the button under a resolved list of names
BATCH_REQUEST_BLOCK = "batch_request"
# block_id of the requester's Cancel button under their confirmation
CANCEL_ACTIONS_BLOCK = "cancel_actions"
# block_id prefix of each request's Approve/Deny block on the Home tab (one per request: unique)
HOME_DECIDE_BLOCK_PREFIX = "home_decide:"
# block_id of the seats list's Previous/Next buttons
SEATS_PAGE_BLOCK = "seats_pages"
# The Connect groups chosen in a request form (a multi_external_select whose options come from
# a block_suggestion): state.values[GROUPS_BLOCK][GROUPS_INPUT]["selected_options"]
GROUPS_BLOCK = "groups_block"
GROUPS_INPUT = "groups_input"
