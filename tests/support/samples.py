"""Sample requests with fixed, recognisable values: a ProvisioningRequest as the renderers get
it (`make_request`), and a NewRequest as the store gets it (`new_request`)."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.workflow.models import NewRequest, Person, ProvisioningRequest
from bot.workflow.states import RequestState

# -- for the renderers -----------------------------------------------------------------------

GUID = "6f300623-1e0c-48e6-a473-ddf630c0c0c3"
TICKET = "tkt-SECRET-0123456789abcdef"
NOW = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)


def make_request(**overrides: object) -> ProvisioningRequest:
    fields: dict = {
        "id": "req-1",
        "state": RequestState.PENDING,
        "requester_id": "U0REQ",
        "username": "jdoe",
        "full_name": "Jane Doe",
        "email": "jane@example.com",
        "temp_ticket": TICKET,
        "justification": "Joins the forecasting team",
        "created_at": NOW,
    }
    fields.update(overrides)
    return ProvisioningRequest(**fields)  # type: ignore[arg-type]


# -- for the store ---------------------------------------------------------------------------

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def ticket_for(username: str) -> str:
    # Built at run time so a traceback's source lines cannot contain it by accident.
    return "tkt-" + "".join(reversed(f"{username}-0123456789abcdef"))


def new_request(
    request_id: str = "req1",
    username: str = "alice",
    *,
    created_at: datetime = T0,
    full_name: str | None = "Alice Liddell",
) -> NewRequest:
    return NewRequest(
        request_id=request_id,
        requester_id="U123",
        person=Person(
            username=username,
            full_name=full_name,  # type: ignore[arg-type]
            email=f"{username}@example.com",
            temp_ticket=ticket_for(username),
        ),
        justification="needs dashboards",
        created_at=created_at,
    )
