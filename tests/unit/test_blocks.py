from __future__ import annotations

import json
from datetime import timedelta

import pytest
from hypothesis import given, target
from hypothesis import strategies as st

from bot.slack.command import UsageProblem
from bot.slack.ui.card import approval_card
from bot.slack.ui.ids import (
    ACTION_APPROVE,
    ACTION_APPROVE_WITH_NOTE,
    ACTION_CLOSE,
    ACTION_DENY,
    ACTION_REQUEST_ACCOUNT,
    ACTION_REQUEST_UNLOCK,
    ACTION_RETRY,
    DENY_REASON_BLOCK,
    DENY_REASON_INPUT,
    JUSTIFICATION_BLOCK,
    JUSTIFICATION_INPUT,
    VIEW_DENY_REASON,
    VIEW_JUSTIFICATION,
)
from bot.slack.ui.limits import BLOCKS_JSON_BUDGET
from bot.slack.ui.messages import (
    duplicate_request_message,
    requester_card_failed,
    requester_confirmation,
    requester_outcome_message,
    usage_message,
    usage_problem_text,
    welcome_message,
)
from bot.slack.ui.modals import deny_modal, justification_modal
from bot.slack.ui.refusals import (
    approval_refusal,
    cancel_refusal,
    file_problem_message,
    pending_refusal,
    refusal_message,
)
from bot.slack.ui.search import (
    no_results_message,
    search_error_message,
    search_failure_message,
    search_results_message,
)
from bot.slack.ui.text import escape_mrkdwn, slack_date
from bot.slack.ui.values import (
    PersonValue,
    decode_justification_metadata,
    decode_person_value,
    encode_justification_metadata,
    encode_person_value,
    is_request_id,
    person_value_too_long,
)
from bot.workflow.models import DirectoryEntry, DirectoryPage, ProvisioningRequest, StepAction
from bot.workflow.outcomes import FileProblem, Refusal, SearchProblem
from bot.workflow.states import RequestState
from tests.support.blockkit import (
    all_text,
    assert_fallback_inert,
    assert_valid_message,
    assert_valid_view,
    buttons,
    mrkdwn_texts,
    plain_texts,
)
from tests.support.samples import GUID, NOW, TICKET, make_request
from tests.support.strategies import (
    PROPERTY,
    TICKET_MARK,
    UNTRUSTED,
    assert_no_ticket,
    assert_untrusted_only_in_plain_text,
    maybe_empty,
    remote_users,
    requests,
    search_results,
    tickets,
    untrusted,
)

CONNECT = "https://connect.example.com/"


def user(**overrides: object) -> DirectoryEntry:
    fields: dict = {
        "username": "jdoe",
        "first_name": "Jane",
        "last_name": "Doe",
        "email": "jane@example.com",
        "temp_ticket": TICKET,
    }
    fields.update(overrides)
    return DirectoryEntry(**fields)


def page(people: list[DirectoryEntry], total: int = 0) -> DirectoryPage:
    return DirectoryPage(entries=tuple(people), total=total)


# --- escaping ------------------------------------------------------------------------------------


def test_escape_mrkdwn() -> None:
    z = "\u200b"
    assert escape_mrkdwn("a&b<c>d") == "a&amp;b&lt;c&gt;d"
    assert escape_mrkdwn("<!channel>") == "&lt;!channel&gt;"
    assert escape_mrkdwn("*x*") == f"{z}*{z}x{z}*{z}"
    assert escape_mrkdwn("a_b~c`d") == f"a{z}_{z}b{z}~{z}c{z}`{z}d"
    assert escape_mrkdwn("&lt;") == "&amp;lt;"


@PROPERTY
@given(text=st.text(max_size=500))
def test_escape_mrkdwn_is_inert(text: str) -> None:
    assert_fallback_inert(escape_mrkdwn(text))


# --- person values -------------------------------------------------------------------------------


def test_person_value_round_trip_and_compact() -> None:
    value = encode_person_value(user())
    assert " " not in value.replace("Jane Doe", "")
    assert value.isascii()
    decoded = decode_person_value(value)
    assert decoded == PersonValue("jdoe", "Jane Doe", "jane@example.com")
    # The directory entry's ticket never rides in a button: the searcher's client holds none.
    assert TICKET not in value


def test_a_button_from_before_tickets_were_left_out_still_works() -> None:
    old = json.dumps({"u": "jdoe", "n": "Jane Doe", "e": "jane@example.com", "t": TICKET})
    decoded = decode_person_value(old)
    assert decoded == PersonValue("jdoe", "Jane Doe", "jane@example.com")
    assert TICKET not in repr(decoded)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "null",
        "[]",
        "42",
        "{",
        '{"t":"x"}',
        '{"u":"","t":"x"}',
        '{"u":1,"t":"x"}',
        '{"u":"x","t":"y","n":5}',
        '{"u":"x","t":"y","e":null}',
        "[" * 100_000,
        None,
        b'{"u":"x","t":"y"}',
    ],
)
def test_decode_person_value_rejects(value: object) -> None:
    assert decode_person_value(value) is None


@PROPERTY
@given(value=st.one_of(st.text(max_size=300), st.binary(max_size=50).map(repr)))
def test_decode_person_value_never_raises(value: str) -> None:
    result = decode_person_value(value)
    assert result is None or isinstance(result, PersonValue)


@PROPERTY
@given(u=remote_users)
def test_person_value_round_trips_any_user(u: DirectoryEntry) -> None:
    value = encode_person_value(u)
    # The button that is rendered also carries the search's correlation id: that must fit.
    with_id = encode_person_value(u, "0123456789abcdef")
    assert person_value_too_long(u) == (len(with_id) > 2000)
    decoded = decode_person_value(value)
    if len(value) > 4 * 2000:
        assert decoded is None  # far beyond what a button carries: refused unread
    elif u.username:
        assert decoded == PersonValue(u.username, u.full_name, u.email)
    else:
        assert decoded is None


def test_justification_metadata_round_trip() -> None:
    value = encode_person_value(user(), "0123456789abcdef")
    url = "https://hooks.slack.com/actions/T1/1/abc"
    metadata = encode_justification_metadata(value, url)
    assert len(metadata) <= 3000
    person, response_url = decode_justification_metadata(metadata)
    assert person == PersonValue("jdoe", "Jane Doe", "jane@example.com", "0123456789abcdef")
    assert response_url == url


def test_justification_metadata_leaves_the_response_url_out_when_it_would_not_fit() -> None:
    value = encode_person_value(user(email="e" * 1900 + "@example.com"))
    metadata = encode_justification_metadata(value, "https://hooks.slack.com/" + "x" * 1200)
    assert len(metadata) <= 3000
    person, response_url = decode_justification_metadata(metadata)
    assert person is not None and person.username == "jdoe"
    assert response_url is None


@pytest.mark.parametrize(
    "metadata",
    [
        "",
        "{",
        "[]",
        '"v"',
        "42",
        "{}",
        '{"v": 5}',
        '{"v": "{}"}',
        '{"r": "https://x"}',
        "[" * 10_000,
    ],
)
def test_justification_metadata_rejects(metadata: str) -> None:
    assert decode_justification_metadata(metadata)[0] is None


@pytest.mark.parametrize("value", ["0123456789abcdef", "abcdef01", "f" * 32])
def test_request_ids(value: str) -> None:
    assert is_request_id(value)


@pytest.mark.parametrize("value", ["", "abc", "0123456789ABCDEF", "f" * 33, "req-1", "<!channel>"])
def test_not_request_ids(value: str) -> None:
    assert not is_request_id(value)


# --- search results ------------------------------------------------------------------------------


def test_search_results_rows() -> None:
    people = [
        user(),
        user(username="bob", first_name="Bob", last_name="", email="", guid=GUID),
    ]
    msg = search_results_message("j", page(people, total=2), connect_url=CONNECT)
    assert_valid_message(msg)
    header, row1, row2, footer = msg["blocks"]
    assert header["type"] == "header" and "j" in header["text"]["text"]
    assert row1["text"]["type"] == "plain_text"
    assert "Jane Doe" in row1["text"]["text"] and "jane@example.com" in row1["text"]["text"]
    assert row1["accessory"]["action_id"] == ACTION_REQUEST_ACCOUNT
    assert decode_person_value(row1["accessory"]["value"]) == PersonValue(
        "jdoe", "Jane Doe", "jane@example.com"
    )
    assert "accessory" not in row2
    assert "email hidden" in row2["text"]["text"]
    assert "Has an account" in row2["text"]["text"] and GUID in row2["text"]["text"]
    assert footer["type"] == "context" and "2 matches" in all_text(footer)
    assert TICKET not in json.dumps(msg)


def test_search_results_block_cap() -> None:
    people = [user(username=f"user{i}", first_name="", last_name="", guid=GUID) for i in range(60)]
    result = page(people, total=300)
    msg = search_results_message("u", result, connect_url=CONNECT)
    assert_valid_message(msg)
    rows = msg["blocks"][1:-1]
    assert len(rows) == 48  # header + 48 rows + footer = 50 blocks
    footer = all_text(msg["blocks"][-1])
    assert "48 of 300" in footer and "252 more" in footer and "longer prefix" in footer


def test_search_results_typical_page_fits() -> None:
    # Realistic rows with a button weigh ~400 JSON chars: about 25 fit the budget.
    people = [user(username=f"user{i}", email=f"{'e' * 40}{i}@example.com") for i in range(100)]
    result = page(people, total=100)
    msg = search_results_message("u", result, connect_url=CONNECT)
    assert_valid_message(msg)
    shown = len(msg["blocks"]) - 2
    assert 20 <= shown < 48
    assert f"{shown} of 100" in all_text(msg["blocks"][-1])


def test_search_results_respect_character_budget() -> None:
    people = [user(username=f"user{i}", email="e" * 1800 + "@example.com") for i in range(30)]
    msg = search_results_message("u", page(people, total=30), connect_url=CONNECT)
    assert_valid_message(msg)
    shown = len(msg["blocks"]) - 2
    assert 1 <= shown < 30
    assert f"{30 - shown} more" in all_text(msg["blocks"][-1])


def test_search_results_value_too_large_has_no_button() -> None:
    big = user(email="e" * 2100 + "@example.com")
    msg = search_results_message("j", page([big]), connect_url=CONNECT)
    assert_valid_message(msg)
    row = msg["blocks"][1]
    assert "accessory" not in row
    assert "directory entry too large" in row["text"]["text"]


def test_search_results_without_ticket_still_offer_the_request() -> None:
    # Search results reach Slack without tickets (filing reads a fresh one from Connect).
    msg = search_results_message("j", page([user(temp_ticket="")]), connect_url=CONNECT)
    assert_valid_message(msg)
    assert len(buttons(msg)) == 1


def test_no_results() -> None:
    msg = search_results_message("<@U1> *x*", page([]), connect_url=CONNECT)
    assert msg == no_results_message("<@U1> *x*")
    assert_valid_message(msg)
    assert "No one in the directory matches" in msg["blocks"][0]["text"]["text"]
    assert msg["blocks"][0]["text"]["type"] == "plain_text"
    assert_fallback_inert(msg["text"])


def test_names_cannot_fake_lines() -> None:
    msg = search_results_message(
        "j",
        page([user(first_name="Bob\nApproved by admin\u202e", last_name="")]),
        connect_url=CONNECT,
    )
    text = msg["blocks"][1]["text"]["text"]
    assert text.splitlines()[0] == "Bob Approved by admin"


@PROPERTY
@given(results=search_results(), prefix=untrusted("P", long=False))
def test_search_results_always_valid(
    results: tuple[list[DirectoryEntry], int], prefix: str
) -> None:
    people, total = results
    msg = search_results_message(prefix, page(people, total=total), connect_url=CONNECT)
    # Steer generation towards payloads near the size limit.
    target(float(len(json.dumps(msg["blocks"]))), label="blocks json")
    assert_valid_message(msg)
    assert_untrusted_only_in_plain_text(msg)
    assert TICKET_MARK not in json.dumps(msg)
    if not people:
        return
    rows = msg["blocks"][1:-1]
    assert 1 <= len(rows) <= 48
    for row, person in zip(rows, people, strict=False):
        assert row["text"]["type"] == "plain_text"
        if "accessory" in row and person.has_account:
            # A locked account is offered an unlock, by its GUID alone.
            button = row["accessory"]
            assert person.locked and button["action_id"] == ACTION_REQUEST_UNLOCK
            assert button["value"] == person.guid
        elif "accessory" in row:
            button = row["accessory"]
            assert button["action_id"] == ACTION_REQUEST_ACCOUNT
            assert len(button["value"]) <= 2000
            assert decode_person_value(button["value"]) == PersonValue(
                person.username, person.full_name, person.email
            )
        elif not person.has_account:
            assert "Can't be requested from Slack" in row["text"]["text"]
    matched = max(total, len(people))
    if matched > len(rows):
        assert f"{matched - len(rows)} more" in all_text(msg["blocks"][-1])


# --- search failures, usage, refusals ------------------------------------------------------------

FAILURE_KINDS = [*SearchProblem, "internal"]


def test_search_failures_are_distinct() -> None:
    messages = [search_failure_message(kind, "<!channel>") for kind in SearchProblem]
    # A failure on the bot's side, not an answer from the directory: no workflow problem.
    messages.append(search_error_message("<!channel>"))
    for msg in messages:
        assert_valid_message(msg)
        assert_fallback_inert(msg["text"])
        assert all("<!channel>" not in t for t in mrkdwn_texts(msg))
        assert any("<!channel>" in t for t in plain_texts(msg))
    assert len({m["text"] for m in messages}) == len(FAILURE_KINDS)
    assert len({mrkdwn_texts(m)[0] for m in messages}) == len(FAILURE_KINDS)
    assert "longer" in all_text(messages[0]) or "more letters" in all_text(messages[0])
    assert "administrator" in all_text(messages[1])
    assert "minute" in all_text(messages[2])
    assert "connect-user-bot check" in all_text(messages[4])
    assert "at least 3 letters" in all_text(messages[5])
    assert "Something went wrong" in all_text(messages[-1])


def test_usage_message() -> None:
    msg = usage_message()
    assert_valid_message(msg)
    assert_fallback_inert(msg["text"])
    text = all_text(msg)
    assert "/connect-user search &lt;prefix&gt;" in text and "/connect-user help" in text
    assert "<prefix>" not in text  # would be read as a link in mrkdwn


def test_usage_message_with_reason_first() -> None:
    msg = usage_message(UsageProblem.UNKNOWN_SUBCOMMAND, "<!channel>")
    assert_valid_message(msg)
    assert_fallback_inert(msg["text"])
    first = msg["blocks"][0]["text"]
    assert first == {
        "type": "plain_text",
        "text": "unknown subcommand `<!channel>`",
        "emoji": False,
    }
    assert all("<!channel>" not in t for t in mrkdwn_texts(msg))


@pytest.mark.parametrize("problem", list(UsageProblem))
def test_every_usage_problem_is_said_first(problem: UsageProblem) -> None:
    msg = usage_message(problem, "<@U1>")
    assert_valid_message(msg)
    assert_fallback_inert(msg["text"])
    assert msg["blocks"][0]["text"]["type"] == "plain_text"
    assert msg["blocks"][0]["text"]["text"] == usage_problem_text(problem, "<@U1>")
    assert "Usage" in all_text(msg)


def test_refusal_message() -> None:
    msg = refusal_message("Only *approvers* can do that.")
    assert_valid_message(msg)
    assert msg["blocks"] == [
        {"type": "section", "text": {"type": "mrkdwn", "text": "Only *approvers* can do that."}}
    ]
    assert_valid_message(refusal_message("x" * 10_000))


def test_refusal_message_with_untrusted_detail() -> None:
    msg = refusal_message("Creating the account failed:", detail="<!channel> *boom*\nline 2")
    assert_valid_message(msg)
    assert msg["text"] == "Creating the account failed:"
    assert msg["blocks"][1]["text"] == {
        "type": "plain_text",
        "text": "<!channel> *boom*\nline 2",
        "emoji": False,
    }
    assert all("<!channel>" not in t for t in mrkdwn_texts(msg))


@PROPERTY
@given(detail=untrusted("D"))
def test_refusal_detail_always_valid(detail: str) -> None:
    msg = refusal_message("Something failed:", detail=detail)
    assert_valid_message(msg)
    assert_untrusted_only_in_plain_text(msg)


NOT_A_DECIDER = [
    Refusal.GUEST,
    Refusal.EXTERNAL,
    Refusal.BOT,
    Refusal.DEACTIVATED,
    Refusal.UNSAFE_CHANNEL,
]


@pytest.mark.parametrize("kind", list(Refusal))
@pytest.mark.parametrize("state", [None, *RequestState])
def test_approval_refusal(kind: Refusal, state: RequestState | None) -> None:
    msg = approval_refusal(kind, state=state)
    assert_valid_message(msg)
    assert_fallback_inert(msg["text"])


def test_approval_refusal_texts() -> None:
    assert "approver channel" in approval_refusal(Refusal.NOT_APPROVER)["text"]
    assert "your own request" in approval_refusal(Refusal.SELF_APPROVAL)["text"]
    already = Refusal.ALREADY_DECIDED
    assert "denied" in approval_refusal(already, state=RequestState.DENIED)["text"]
    assert "approved" in approval_refusal(already, state=RequestState.APPROVED)["text"]
    assert approval_refusal(already)["text"] == "This request was already decided."
    assert "no longer exists" in approval_refusal(Refusal.NOT_FOUND)["text"]
    assert "try again in a minute" in approval_refusal(Refusal.CANNOT_CHECK)["text"]
    # Members of the approver channel who may not decide are told why, in plain words.
    assert "Guest accounts" in approval_refusal(Refusal.GUEST)["text"]
    assert "another organisation" in approval_refusal(Refusal.EXTERNAL)["text"]
    assert "Bots and apps" in approval_refusal(Refusal.BOT)["text"]
    assert "deactivated" in approval_refusal(Refusal.DEACTIVATED)["text"]
    unsafe = approval_refusal(Refusal.UNSAFE_CHANNEL)["text"]
    assert "public" in unsafe and "make it private" in unsafe
    # Only the requester may cancel: a reason no decision is refused for.
    generic = approval_refusal(Refusal.NOT_REQUESTER)["text"]
    assert generic == "That action could not be completed."
    assert all(approval_refusal(kind)["text"] != generic for kind in NOT_A_DECIDER)


@pytest.mark.parametrize("problem", list(FileProblem))
def test_file_problems_each_get_their_words(problem: FileProblem) -> None:
    msg = file_problem_message(problem, username="*jdoe* <!channel>")
    assert_valid_message(msg)
    assert_fallback_inert(msg["text"])
    assert all("<!channel>" not in t for t in mrkdwn_texts(msg))
    if problem not in (
        FileProblem.EMPTY_JUSTIFICATION,
        FileProblem.ROLE_NOT_REQUESTABLE,
        FileProblem.ROLES_NOT_MANAGED,
        FileProblem.LOCK_UNAVAILABLE,
        FileProblem.NO_GROUP_SEARCH,
        FileProblem.GROUPS_NOT_OFFERED,
        FileProblem.GROUP_NOT_FOUND,
        FileProblem.TOO_MANY_GROUPS,
        FileProblem.NO_GROUPS_CHOSEN,
    ):
        assert "jdoe" in msg["text"]
    texts = {file_problem_message(p, username="jdoe")["text"] for p in FileProblem}
    assert len(texts) == len(FileProblem)


@pytest.mark.parametrize("kind", list(Refusal))
def test_every_refusal_renders_on_every_surface(kind: Refusal) -> None:
    # A reason added to the workflow without words here fails mypy (assert_never) and this test.
    for msg in (
        approval_refusal(kind, state=RequestState.DENIED),
        cancel_refusal(kind, state=RequestState.DENIED),
        pending_refusal(kind, approver_channel="CAPPROVERS"),
    ):
        assert_valid_message(msg)
        assert_fallback_inert(msg["text"])


# --- modals --------------------------------------------------------------------------------------


def test_justification_modal() -> None:
    person = PersonValue("jdoe", "Jane Doe", "", TICKET)
    view = justification_modal(person=person, private_metadata="meta")
    assert_valid_view(view)
    assert view["callback_id"] == VIEW_JUSTIFICATION
    assert view["title"]["text"] == "Request account"
    assert view["submit"]["text"] == "Send request" and view["close"]["text"] == "Cancel"
    assert view["private_metadata"] == "meta"
    (input_block,) = [blk for blk in view["blocks"] if blk["type"] == "input"]
    assert input_block["block_id"] == JUSTIFICATION_BLOCK
    element = input_block["element"]
    assert element["action_id"] == JUSTIFICATION_INPUT
    assert element["multiline"] is True and element["max_length"] == 1000
    assert "optional" not in input_block
    assert "Jane Doe" in all_text(view) and "email hidden" in all_text(view)
    assert TICKET not in json.dumps(view)


def test_modal_refuses_oversized_metadata() -> None:
    with pytest.raises(ValueError):
        justification_modal(person=PersonValue("a", "", "", "t"), private_metadata="x" * 3001)
    with pytest.raises(ValueError):
        deny_modal(request_id="x" * 3001, username="a")


def test_deny_modal() -> None:
    view = deny_modal(request_id="req-1", username="<!channel>")
    assert_valid_view(view)
    assert view["callback_id"] == VIEW_DENY_REASON
    assert view["private_metadata"] == "req-1"
    (input_block,) = [blk for blk in view["blocks"] if blk["type"] == "input"]
    assert input_block["block_id"] == DENY_REASON_BLOCK
    assert input_block["element"]["action_id"] == DENY_REASON_INPUT
    assert input_block["element"]["max_length"] == 500
    assert all("<!channel>" not in t for t in mrkdwn_texts(view))


@PROPERTY
@given(
    username=untrusted("U"),
    full_name=maybe_empty(untrusted("F")),
    email=maybe_empty(untrusted("M")),
    ticket=tickets,
    metadata=st.one_of(st.text(max_size=50), st.integers(0, 3000).map(lambda n: "m" * n)),
    request_id=st.one_of(
        st.text(min_size=1, max_size=50), st.integers(1, 3000).map(lambda n: "r" * n)
    ),
)
def test_modals_always_valid(
    username: str, full_name: str, email: str, ticket: str, metadata: str, request_id: str
) -> None:
    view = justification_modal(
        person=PersonValue(username, full_name, email, ticket), private_metadata=metadata
    )
    assert_valid_view(view)
    assert_untrusted_only_in_plain_text(view)
    assert TICKET_MARK not in all_text(view)
    deny = deny_modal(request_id=request_id, username=username)
    assert_valid_view(deny)
    assert_untrusted_only_in_plain_text(deny)
    assert deny["private_metadata"] == request_id


# --- the approval card ---------------------------------------------------------------------------


def card_buttons(msg: dict) -> list[dict]:
    return buttons(msg["blocks"])


def test_pending_card() -> None:
    msg = approval_card(make_request(), connect_url=CONNECT)
    assert_valid_message(msg)
    assert_fallback_inert(msg["text"])
    approve, with_note, deny = card_buttons(msg)
    assert approve["action_id"] == ACTION_APPROVE and approve["style"] == "primary"
    # No role to confirm: Approve decides at once, so a note needs its own button.
    assert with_note["action_id"] == ACTION_APPROVE_WITH_NOTE and "style" not in with_note
    assert deny["action_id"] == ACTION_DENY and deny["style"] == "danger"
    assert approve["value"] == with_note["value"] == deny["value"] == "req-1"
    md = "\n".join(mrkdwn_texts(msg))
    assert "<@U0REQ>" in md and "<!date^" in md
    plain = "\n".join(plain_texts(msg))
    assert "Jane Doe" in plain and "jdoe" in plain and "jane@example.com" in plain
    assert "Joins the forecasting team" in plain
    assert TICKET not in json.dumps(msg)


def test_pending_card_shows_last_error_above_buttons() -> None:
    msg = approval_card(make_request(last_error="Connect said 503"), connect_url=CONNECT)
    assert_valid_message(msg)
    kinds = [blk["type"] for blk in msg["blocks"]]
    warning = msg["blocks"][kinds.index("actions") - 1]
    assert warning["text"]["type"] == "plain_text" and "Connect said 503" in warning["text"]["text"]


def test_provisioning_card() -> None:
    msg = approval_card(
        make_request(state=RequestState.PROVISIONING, decided_by="W0APPROVER"), connect_url=CONNECT
    )
    assert_valid_message(msg)
    assert not card_buttons(msg)
    assert any("Creating the account" in t and "<@W0APPROVER>" in t for t in mrkdwn_texts(msg))


def test_provisioning_card_while_the_outcome_is_checked() -> None:
    note = "Connect did not answer in time. The bot is checking whether Connect created it."
    msg = approval_card(
        make_request(state=RequestState.PROVISIONING, decided_by="W0APPROVER", last_error=note),
        connect_url=CONNECT,
    )
    assert_valid_message(msg)
    assert not card_buttons(msg), "no Approve until the outcome is known"
    assert any("Checking whether the account was created" in t for t in mrkdwn_texts(msg))
    assert note in plain_texts(msg)


@pytest.mark.parametrize("state", [RequestState.APPROVED, RequestState.ALREADY_EXISTS])
def test_outcome_note_on_the_card_and_to_the_requester(state: RequestState) -> None:
    note = "Created during this approval: Connect answered that the username was in use, *but*"
    req = make_request(state=state, decided_by="W0APPROVER", connect_guid=GUID, outcome_note=note)
    for msg in (
        approval_card(req, connect_url=CONNECT),
        requester_outcome_message(req, connect_url=CONNECT),
    ):
        assert_valid_message(msg)
        assert note in plain_texts(msg)
        assert all(note not in t for t in mrkdwn_texts(msg))


def test_approved_card_links_to_connect() -> None:
    req = make_request(
        state=RequestState.APPROVED, decided_by="W0APPROVER", decided_at=NOW, connect_guid=GUID
    )
    msg = approval_card(req, connect_url=CONNECT)
    assert_valid_message(msg)
    assert not card_buttons(msg)
    md = "\n".join(mrkdwn_texts(msg))
    assert "Approved by <@W0APPROVER>" in md
    assert f"<https://connect.example.com/connect/#/people/{GUID}|" in md
    assert GUID in "\n".join(plain_texts(msg))


def test_card_does_not_link_odd_guid() -> None:
    req = make_request(
        state=RequestState.APPROVED, decided_by="W0APPROVER", connect_guid="x|<!channel>"
    )
    msg = approval_card(req, connect_url=CONNECT)
    assert_valid_message(msg)
    assert "people/" not in json.dumps(msg)
    assert any("x|<!channel>" in t for t in plain_texts(msg))


def test_already_exists_card() -> None:
    req = make_request(
        state=RequestState.ALREADY_EXISTS, decided_by="W0APPROVER", connect_guid=GUID
    )
    msg = approval_card(req, connect_url=CONNECT)
    assert_valid_message(msg)
    assert not card_buttons(msg)
    assert any("jdoe already had an account" in t for t in plain_texts(msg))
    assert any("<@W0APPROVER>" in t for t in mrkdwn_texts(msg))
    assert "/connect/#/people/" in json.dumps(msg)


def test_denied_card() -> None:
    req = make_request(
        state=RequestState.DENIED, decided_by="W0APPROVER", deny_reason="*no* <!here>"
    )
    msg = approval_card(req, connect_url=CONNECT)
    assert_valid_message(msg)
    assert not card_buttons(msg)
    assert any("Denied by <@W0APPROVER>" in t for t in mrkdwn_texts(msg))
    assert any("*no* <!here>" in t for t in plain_texts(msg))
    assert all("<!here>" not in t for t in mrkdwn_texts(msg))


@pytest.mark.parametrize("state", [RequestState.EXPIRED, RequestState.CANCELLED])
def test_closed_cards(state: RequestState) -> None:
    msg = approval_card(make_request(state=state), connect_url=CONNECT)
    assert_valid_message(msg)
    assert not card_buttons(msg)
    assert state.value in all_text(msg) or state.value in msg["text"]


def test_card_naive_datetime_is_utc() -> None:
    naive = make_request(created_at=NOW.replace(tzinfo=None))
    aware = make_request(created_at=NOW)
    assert approval_card(naive, connect_url=CONNECT) == approval_card(aware, connect_url=CONNECT)


@pytest.mark.parametrize("state", list(RequestState))
@pytest.mark.parametrize("filler", ["😀" * 5000, '"\\' * 3000, "*<!channel>&" * 500])
def test_card_worst_case_fits(state: RequestState, filler: str) -> None:
    req = make_request(
        id="r" * 64,
        state=state,
        username=filler,
        full_name=filler,
        email=filler,
        temp_ticket=filler,
        justification=filler,
        decided_by="W0APPROVER",
        decided_at=NOW,
        deny_reason=filler,
        connect_guid=filler,
        last_error=filler,
        outcome_note=filler,
    )
    for msg in (
        approval_card(req, connect_url=CONNECT),
        requester_outcome_message(req, connect_url=CONNECT),
        requester_confirmation(req, card_permalink="https://x.slack.com/p1"),
        duplicate_request_message(req, card_permalink=None),
    ):
        assert_valid_message(msg)
        assert len(json.dumps(msg["blocks"])) <= BLOCKS_JSON_BUDGET
        assert_fallback_inert(msg["text"])


@PROPERTY
@given(req=requests)
def test_approval_card_always_valid(req: ProvisioningRequest) -> None:
    msg = approval_card(req, connect_url=CONNECT)
    target(float(len(json.dumps(msg["blocks"]))), label="blocks json")
    assert_valid_message(msg)
    assert len(json.dumps(msg["blocks"])) <= BLOCKS_JSON_BUDGET
    assert_untrusted_only_in_plain_text(msg)
    assert_no_ticket(msg, req.temp_ticket)
    for mark in ("J", "R", "E", "N"):  # justification, reason, error, note: never in notifications
        assert f"{UNTRUSTED}{mark}" not in msg["text"]
    found = card_buttons(msg)
    if req.state is RequestState.PENDING:
        expected = [ACTION_APPROVE, ACTION_DENY]
        if req.step(StepAction.SET_ROLE) is None:
            expected.insert(1, ACTION_APPROVE_WITH_NOTE)
        assert [x["action_id"] for x in found] == expected
        assert all(x["value"] == req.id for x in found)
    elif req.state is RequestState.INCOMPLETE:
        assert [(x["action_id"], x["value"]) for x in found] == [
            (ACTION_RETRY, req.id),
            (ACTION_CLOSE, req.id),
        ]
    else:
        assert found == []


# --- messages to the requester -------------------------------------------------------------------


def test_requester_confirmation() -> None:
    link = "https://team.slack.com/archives/C1/p123?thread_ts=1&cid=C1"
    msg = requester_confirmation(make_request(), card_permalink=link)
    assert_valid_message(msg)
    assert_fallback_inert(msg["text"])
    assert "sent to the approvers" in all_text(msg)
    assert any("Jane Doe (jdoe)" in t for t in plain_texts(msg))
    assert any(link.replace("&", "&amp;") in t for t in mrkdwn_texts(msg))
    no_link = requester_confirmation(make_request(), card_permalink=None)
    assert_valid_message(no_link)
    assert "View the request" not in all_text(no_link)


def test_duplicate_request_message() -> None:
    msg = duplicate_request_message(make_request(), card_permalink="https://x.slack.com/p1")
    assert_valid_message(msg)
    assert_fallback_inert(msg["text"])
    assert "already" in msg["text"] and "<@U0REQ>" in "\n".join(mrkdwn_texts(msg))
    assert "View the request" in all_text(msg)


def test_outcome_approved() -> None:
    req = make_request(state=RequestState.APPROVED, decided_by="W0APPROVER", connect_guid=GUID)
    msg = requester_outcome_message(req, connect_url=CONNECT)
    assert_valid_message(msg)
    assert "approved" in msg["text"]
    assert f"/connect/#/people/{GUID}" in json.dumps(msg)
    assert TICKET not in json.dumps(msg)


def test_outcome_already_exists() -> None:
    req = make_request(state=RequestState.ALREADY_EXISTS, connect_guid=GUID)
    msg = requester_outcome_message(req, connect_url=CONNECT)
    assert_valid_message(msg)
    assert "already had" in msg["text"]
    assert f"/connect/#/people/{GUID}" in json.dumps(msg)


def test_outcome_denied_with_reason() -> None:
    req = make_request(state=RequestState.DENIED, decided_by="W0APPROVER", deny_reason="<!here> no")
    msg = requester_outcome_message(req, connect_url=CONNECT)
    assert_valid_message(msg)
    assert "denied" in msg["text"] and "<!here>" not in msg["text"]
    assert any("<!here> no" in t for t in plain_texts(msg))


def test_outcome_failure_left_pending() -> None:
    req = make_request(last_error="Connect API key lacks permission")
    msg = requester_outcome_message(req, connect_url=CONNECT)
    assert_valid_message(msg)
    assert "failed" in msg["text"]
    assert any("Connect API key lacks permission" in t for t in plain_texts(msg))


def test_welcome_message() -> None:
    msg = welcome_message(connect_url=CONNECT, username="*jdoe*")
    assert_valid_message(msg)
    assert_fallback_inert(msg["text"])
    assert any("<https://connect.example.com/connect/|" in t for t in mrkdwn_texts(msg))
    assert any("*jdoe*" in t for t in plain_texts(msg))


@PROPERTY
@given(req=requests, permalink=st.one_of(st.none(), st.just("https://x.slack.com/archives/C1/p1")))
def test_requester_messages_always_valid(req: ProvisioningRequest, permalink: str | None) -> None:
    for msg in (
        requester_confirmation(req, card_permalink=permalink),
        duplicate_request_message(req, card_permalink=permalink),
        requester_outcome_message(req, connect_url=CONNECT),
        welcome_message(connect_url=CONNECT, username=req.username),
    ):
        assert_valid_message(msg)
        assert_untrusted_only_in_plain_text(msg)
        assert_no_ticket(msg, req.temp_ticket)


def test_slack_date_format() -> None:
    text = slack_date(NOW + timedelta(0))
    assert (
        text
        == f"<!date^{int(NOW.timestamp())}^{{date_short_pretty}} at {{time}}|2025-03-04 05:06 UTC>"
    )


def test_requester_card_failed_is_valid_and_inert() -> None:
    from bot.workflow.models import ProvisioningRequest
    from bot.workflow.states import RequestState
    from tests.support.blockkit import assert_fallback_inert, assert_valid_message

    request = ProvisioningRequest(
        id="0123456789abcdef",
        state=RequestState.PENDING,
        requester_id="U1",
        username="*bold* <!channel>",
        full_name="<@U2>",
        email="e@x",
        temp_ticket="t",
    )
    message = requester_card_failed(request)
    assert_valid_message(message)
    assert_fallback_inert(message["text"])
    assert "<!channel>" not in json.dumps(
        [b for b in message["blocks"] if b.get("text", {}).get("type") == "mrkdwn"]
    )
