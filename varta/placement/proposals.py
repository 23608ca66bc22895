"""A placement proposal's life (pure): drafted by the Responsible Department, sent to the
territorial police unit for agreement (MVS-4), agreed or commented on by it, sent again
after changes, and approved once agreed. Who may take which step, and what it leads to."""

from __future__ import annotations

from varta.access.policy import DEPARTMENT, DEPUTY_MAYOR, FIRST_DEPUTY, MAYOR, POLICE

DRAFT, SENT, AGREED, COMMENTED, APPROVED = "draft", "sent", "agreed", "commented", "approved"
STATUSES = (DRAFT, SENT, AGREED, COMMENTED, APPROVED)

# step -> (statuses it may follow, roles that take it, the status it leads to)
STEPS = {
    "send": ((DRAFT, COMMENTED), {DEPARTMENT}, SENT),
    "agree": ((SENT, COMMENTED), {POLICE}, AGREED),
    "comment": ((SENT, AGREED, COMMENTED), {POLICE}, COMMENTED),
    "approve": ((AGREED,), {DEPARTMENT, MAYOR, FIRST_DEPUTY, DEPUTY_MAYOR}, APPROVED),
}
NOTE_OF = {"send": SENT, "agree": AGREED, "comment": COMMENTED, "approve": APPROVED}


class ProposalError(ValueError):
    pass


def next_status(status: str, step: str, role: str) -> str:
    if step not in STEPS:
        raise ProposalError(f"unknown step {step!r}: one of {', '.join(STEPS)}")
    after, roles, to = STEPS[step]
    if role not in roles:
        raise ProposalError(f"{step}: not for role {role}")
    if status not in after:
        raise ProposalError(f"{step}: the proposal is {status}, the step follows {' or '.join(after)}")
    return to


def visible_to(proposal_sent_to: str | None, login: str, role: str) -> bool:
    """The police unit sees the proposals sent to it, and no other; the city's side sees all."""
    if role == POLICE:
        return proposal_sent_to is not None and proposal_sent_to == login
    return True
