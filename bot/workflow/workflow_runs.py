"""Requests filed by a Workflow Builder step ("Request a Posit Connect account"): the person who
needs access is a Slack user, found in the directory by their Slack email as someone asking for
themselves is; the request is an ordinary one, which remembers the step's execution so that
deciding it (however, whenever, on whichever replica) completes the step.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from enum import StrEnum

from bot.workflow.finding import FindProblem
from bot.workflow.models import (
    DirectoryEntry,
    NewRequest,
    OutboxItem,
    OutboxKind,
    ProvisioningRequest,
)
from bot.workflow.outcomes import Duplicate, Filed, FileProblem, NotFiled
from bot.workflow.requests import Requests

log = logging.getLogger(__name__)


class StepProblem(StrEnum):
    """Why a step's request could not be filed (the step then ends in error at once)."""

    NO_EMAIL = "no_email"
    NOT_FOUND = "not_found"
    SEVERAL = "several"
    NO_DIRECTORY = "no_directory"
    SLACK_UNAVAILABLE = "slack_unavailable"
    CONNECT_UNAVAILABLE = "connect_unavailable"
    ALREADY_WAITING = "already_waiting"  # someone asked for them already, outside this run
    NOT_FILED = "not_filed"  # the form's values were refused (see `file_problem`)


_FIND_PROBLEMS = {
    FindProblem.NO_EMAIL: StepProblem.NO_EMAIL,
    FindProblem.NOT_FOUND: StepProblem.NOT_FOUND,
    FindProblem.SEVERAL: StepProblem.SEVERAL,
    FindProblem.NO_DIRECTORY: StepProblem.NO_DIRECTORY,
    FindProblem.SLACK_UNAVAILABLE: StepProblem.SLACK_UNAVAILABLE,
    FindProblem.CONNECT_UNAVAILABLE: StepProblem.CONNECT_UNAVAILABLE,
}


@dataclass(frozen=True, slots=True)
class StepStarted:
    """What a step's run led to: a request (pending, or decided already if this is a retried
    event), an account the person has already (the step succeeds at once), or a problem (the
    step fails at once)."""

    request: ProvisioningRequest | None = None
    account: DirectoryEntry | None = None
    problem: StepProblem | None = None
    file_problem: FileProblem | None = None


class WorkflowRuns:
    def __init__(self, requests: Requests) -> None:
        self.requests = requests

    async def start(
        self,
        *,
        execution_id: str,
        person_id: str,
        requester_id: str,
        justification: str,
        role: str | None = None,
    ) -> StepStarted:
        """File the request a step's run asks for, once: Slack retries events, and a retried
        one finds the request its first delivery filed."""
        requests = self.requests
        earlier = await requests.store.find_by_workflow(execution_id)
        if earlier is not None:
            return StepStarted(request=earlier)
        own = await requests.own_entry(person_id)
        if own.entry is None:
            return StepStarted(problem=_FIND_PROBLEMS[own.problem or FindProblem.NOT_FOUND])
        if own.entry.has_account:
            return StepStarted(account=own.entry)
        checked = await requests.checked_form(justification, role)
        if isinstance(checked, NotFiled):
            return StepStarted(problem=StepProblem.NOT_FILED, file_problem=checked.problem)
        justification, role = checked
        prepared = await requests.prepare_new_account(
            requester_id, own.entry.username, justification, role
        )
        if isinstance(prepared, Duplicate):
            if prepared.existing.workflow_execution_id == execution_id:
                # The same run delivered twice, the first filing committed since the look-up.
                return StepStarted(request=prepared.existing)
            return StepStarted(problem=StepProblem.ALREADY_WAITING, request=prepared.existing)
        if isinstance(prepared, NotFiled):
            if prepared.problem is FileProblem.ALREADY_HAS_ACCOUNT:
                return StepStarted(account=dataclasses.replace(own.entry, guid=prepared.guid))
            return StepStarted(problem=StepProblem.NOT_FILED, file_problem=prepared.problem)
        new: NewRequest = dataclasses.replace(prepared, workflow_execution_id=execution_id)
        outcome = await requests.create(new, [OutboxItem(OutboxKind.POST_CARD)])
        if isinstance(outcome, Filed):
            log.info("request %s filed by a workflow step", outcome.request.id)
            return StepStarted(request=outcome.request)
        if isinstance(outcome, Duplicate):
            if outcome.existing.workflow_execution_id == execution_id:
                return StepStarted(request=outcome.existing)  # the same run, delivered twice
            return StepStarted(problem=StepProblem.ALREADY_WAITING, request=outcome.existing)
        return StepStarted(problem=StepProblem.NOT_FILED, file_problem=outcome.problem)
