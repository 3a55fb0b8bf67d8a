"""The takedown workflow: which state may follow which, and the one way a request moves.

Every service that changes a request's state calls `takedown_transition`; nothing else writes
`TakedownRequest.state`.
"""

from __future__ import annotations

from functools import partial

from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from core.conf import setting
from core.errors import InvalidTransition
from core.permissions import Capability
from provenance.engine.canonical import canonical_hash
from provenance.ledger.append import ledger_append
from provenance.models import User
from takedowns.models import TakedownEvent, TakedownRequest

State = TakedownRequest.State

# Which state may follow which. Everything else is refused (409).
TRANSITIONS: dict[str, set[str]] = {
    State.RECEIVED: {State.ACKNOWLEDGED, State.WITHDRAWN},
    State.ACKNOWLEDGED: {State.VALIDATING, State.WITHDRAWN},
    State.VALIDATING: {State.NEEDS_INFO, State.REJECTED, State.ACCEPTED, State.DUPLICATE,
                       State.WITHDRAWN},
    State.NEEDS_INFO: {State.VALIDATING, State.REJECTED, State.WITHDRAWN},
    State.ACCEPTED: {State.SCOPING, State.WITHDRAWN},
    State.SCOPING: {State.DATA_REMEDIATED, State.WITHDRAWN},
    State.DATA_REMEDIATED: {State.MODEL_REMEDIATION, State.DECIDED},  # "exclude" needs no model
    State.MODEL_REMEDIATION: {State.VERIFYING},
    State.VERIFYING: {State.DECIDED, State.MODEL_REMEDIATION},  # a failed check: remediate again
    State.DECIDED: {State.CLOSED, State.COUNTER_NOTICE},
    State.COUNTER_NOTICE: {State.RESTORE_WINDOW, State.CLOSED},
    State.RESTORE_WINDOW: {State.RESTORED, State.LITIGATION_HOLD},
    State.LITIGATION_HOLD: {State.CLOSED, State.RESTORED},
}
# What each step on a request asks of whoever takes it. The API's actions and the portal's forms
# both read this table.
STEP_CAPABILITIES: dict[str, Capability] = {
    "supplement": Capability.FILE_TAKEDOWN, "withdraw": Capability.FILE_TAKEDOWN,
    **{step: Capability.MOVE_TAKEDOWN for step in (
        "decide", "scope", "review_scope", "add_to_scope", "remediate_data", "counter_notice",
        "restore", "remediate_models", "cancel_run", "verify")}}
DECISIONS = {State.REJECTED, State.NEEDS_INFO, State.ACCEPTED, State.DECIDED, State.RESTORED,
             State.DUPLICATE, State.CLOSED}

def _record(request: TakedownRequest, to: str, actor: User | None, note: str = "") -> None:
    """Move to `to` (already checked), with its event and ledger entry."""
    previous, now = request.state, timezone.now()
    request.state, request.state_changed_at = to, now
    request.save(update_fields=["state", "state_changed_at", "missing", "decision_reasons",
                                "duplicate_of", "acknowledged_at", "decision", "updated_at"])
    payload = {"reference": request.reference, "from": previous, "to": to,
               "legal_basis": request.legal_basis}
    if to == State.DECIDED and request.decision:
        payload["notice_sha256"] = canonical_hash(request.decision)  # binds the notice
    entry = ledger_append(actor=actor, event=f"takedown.{to}", subject=request,
                          payload=payload)
    TakedownEvent.objects.create(request=request, from_state=previous, to_state=to,
                                 actor=actor, note=note, at=now, ledger_entry=entry)
    if to in DECISIONS or to in (State.ACKNOWLEDGED, State.RESTORE_WINDOW):
        from takedowns.tasks import takedown_notify_task

        transaction.on_commit(partial(takedown_notify_task.delay, request.pk, to))


def takedown_notify(request_id: int, state: str) -> None:
    """E-mail the claimant that their request reached `state` (a retried task, after commit)."""
    request = TakedownRequest.objects.filter(pk=request_id).first()
    if request is None or not request.claimant_email:
        return
    lines = [f"Your takedown request {request.reference} is now: {state.replace('_', ' ')}."]
    if state == State.ACKNOWLEDGED:
        lines += [f"Deadline to {name.replace('_', ' ')}: {day}"
                  for name, day in request.deadlines.items()]
    if state == State.NEEDS_INFO:
        lines += ["We need:"] + [f"- {m['message']}" for m in request.missing]
    if request.decision_reasons:
        lines += ["", request.decision_reasons]
    if state == State.DECIDED and request.decision:
        from takedowns.services.decision import notice_text, takedown_receipt

        receipt = takedown_receipt(request)
        lines += notice_text(request.decision)
        if receipt:
            proof = receipt["inclusion_proof"]
            lines += ["", f"Receipt: ledger entry {receipt['entry']['header']['seq']} "
                          f"({receipt['entry']['entry_hash']}), included in the ledger's tree "
                          f"of {proof['tree_size']} entries with root {proof['root']}. "
                          f"Download it from your request's page and check it with "
                          f"{receipt['verify_with']}."]
    if state == State.RESTORE_WINDOW:
        notice = request.counter_notice
        lines += ["", f"A counter notice was received from {notice.get('claimant_name')} about: "
                      f"{notice.get('material')}.",
                  f"The material will be restored from {request.deadlines['restore_not_before']}"
                  f" to {request.deadlines['restore_by']} unless you tell us that you have filed "
                  f"an action seeking a court order (17 U.S.C. §512(g)(2)(C))."]
    if state == State.REJECTED:
        lines += ["", "To appeal, reply to this message within 30 days with the reasons and any "
                      "new evidence; a different reviewer will decide."]
    send_mail(f"[Trailmark] {request.reference}: {state.replace('_', ' ')}", "\n".join(lines),
              str(setting("TAKEDOWN_FROM_EMAIL")), [request.claimant_email])


def takedown_transition(request: TakedownRequest, to: str, actor: User | None,
                        note: str = "") -> None:
    """Move a request to state `to`: refused (InvalidTransition, answered 409) unless TRANSITIONS
    allows it; recorded as a TakedownEvent and in the ledger (with the request's reference and
    states, never the claimant's personal data); the claimant is e-mailed at each decision once
    the transaction commits. Callers hold the transaction (every service is atomic)."""
    if to not in TRANSITIONS.get(request.state, set()):
        raise InvalidTransition(f"takedown {request.reference}", request.state,
                                f"move to {to}")
    _record(request, to, actor, note)


