"""Deadlines: which open requests have missed theirs. Run by Celery beat every 15 minutes."""

from __future__ import annotations

from datetime import date

from django.db import transaction
from django.utils import timezone

from core.mail import mail_on_commit
from core.permissions import Capability, roles_with
from provenance.ledger.append import ledger_append
from provenance.models import User
from takedowns.models import TakedownRequest

State = TakedownRequest.State
# Until the request is acknowledged / decided, these deadlines are running.
RUNNING = {
    "acknowledge": {State.RECEIVED},
    "decide": {State.RECEIVED, State.ACKNOWLEDGED, State.VALIDATING, State.ACCEPTED,
               State.SCOPING, State.DATA_REMEDIATED, State.MODEL_REMEDIATION, State.VERIFYING},
    "restore_by": {State.RESTORE_WINDOW},
}


def missed_deadline(request: TakedownRequest, today: date) -> date | None:
    """The earliest deadline this request has missed and is still subject to, if any."""
    missed = [date.fromisoformat(day) for name, day in request.deadlines.items()
              if request.state in RUNNING.get(name, set()) and date.fromisoformat(day) < today]
    return min(missed) if missed else None


@transaction.atomic
def takedown_deadlines_check(today: date | None = None) -> list[str]:
    """Flag requests that went overdue since the last check (and clear the flag of those no
    longer running late); staff get one e-mail listing the newly overdue. Returns their
    references."""
    today = today or timezone.localdate()
    newly = []
    for request in TakedownRequest.objects.select_for_update().exclude(
            state__in=TakedownRequest.FINAL_STATES):
        missed = missed_deadline(request, today)
        if missed == request.overdue_since:
            continue
        request.overdue_since = missed
        request.save(update_fields=["overdue_since", "updated_at"])
        if missed is not None:
            newly.append(request)
            ledger_append(actor=None, event="takedown.overdue", subject=request,
                          payload={"reference": request.reference, "deadline": str(missed),
                                   "state": request.state})
    if newly:
        staff = list(User.objects.filter(role__in=roles_with(Capability.MOVE_TAKEDOWN),
                                         is_active=True).exclude(email="")
                     .values_list("email", flat=True))
        lines = [f"{r.reference} ({r.get_legal_basis_display()}, {r.state}): deadline "
                 f"{r.overdue_since}" for r in newly]
        mail_on_commit(f"[Trailmark] {len(newly)} takedown request(s) overdue",
                       "\n".join(lines), staff)
    return [r.reference for r in newly]



