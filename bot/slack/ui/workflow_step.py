"""What a Workflow Builder step is told when it ends in error: plain sentences (Slack shows them
to whoever looks at the workflow's run)."""

from __future__ import annotations

from typing import assert_never

from bot.slack.ui.describe import status_words
from bot.workflow.models import ProvisioningRequest
from bot.workflow.outcomes import FileProblem
from bot.workflow.states import RequestState
from bot.workflow.workflow_runs import StepProblem

_FILE_PROBLEMS = {
    FileProblem.EMPTY_JUSTIFICATION: "the justification is empty",
    FileProblem.ROLE_NOT_REQUESTABLE: "that role cannot be asked for through the bot",
    FileProblem.CANNOT_VERIFY: "Posit Connect could not confirm the person just now",
    FileProblem.NOT_IN_DIRECTORY: "the person is no longer in the directory",
}


def step_problem_text(problem: StepProblem, file_problem: FileProblem | None = None) -> str:
    match problem:
        case StepProblem.NO_EMAIL:
            return (
                "The person's Slack profile shows no email, so they cannot be found in the "
                "directory."
            )
        case StepProblem.NOT_FOUND:
            return "No one in the directory has the email on the person's Slack profile."
        case StepProblem.SEVERAL:
            return (
                "Several directory entries have the person's email; ask with /connect-user search."
            )
        case StepProblem.NO_DIRECTORY:
            return (
                "The login provider has no directory: the account is made when the person "
                "first logs in to Posit Connect."
            )
        case StepProblem.SLACK_UNAVAILABLE:
            return "Slack did not give the person's profile just now. Run the workflow again."
        case StepProblem.CONNECT_UNAVAILABLE:
            return "Posit Connect did not answer just now. Run the workflow again."
        case StepProblem.ALREADY_WAITING:
            return "A request for this person is waiting for approval already."
        case StepProblem.NOT_FILED:
            reason = _FILE_PROBLEMS.get(file_problem) if file_problem else None
            return f"The request could not be filed: {reason or 'it was refused'}."
        case _:
            assert_never(problem)


def step_outcome_text(request: ProvisioningRequest) -> str:
    """Why a decided request ends its step in error."""
    state = request.state
    match state:
        case RequestState.DENIED:
            return "The request was denied: " + (request.deny_reason or "no reason given")[:500]
        case RequestState.EXPIRED:
            return "The request expired: nobody approved or denied it in time."
        case RequestState.CANCELLED:
            return "The request was cancelled."
        case RequestState.CLOSED:
            return "The request was closed before the account was made."
        case (
            RequestState.PENDING
            | RequestState.PROVISIONING
            | RequestState.INCOMPLETE
            | RequestState.APPROVED
            | RequestState.ALREADY_EXISTS
        ):
            return f"The request is {status_words(state)}."
        case _:
            assert_never(state)
