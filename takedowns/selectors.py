"""Reads of takedown requests, scoped to who asks."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, Q, QuerySet

from core.permissions import Capability, can, role_of
from takedowns.models import TakedownEvent, TakedownRequest


def takedown_list(user: Any) -> QuerySet[TakedownRequest]:
    """Staff and auditors see every request; anyone else the ones they filed or their
    rights-holder's."""
    rows = TakedownRequest.objects.prefetch_related(
        "works", "claimed_sources",
        Prefetch("events", TakedownEvent.objects.select_related("actor", "ledger_entry")))
    role = role_of(user)
    if can(user, Capability.AUDIT):
        return rows
    if role is None:
        return rows.none()
    mine = Q(filed_by=user)
    if user.rights_holder_id:
        mine |= Q(rights_holder_id=user.rights_holder_id)
    return rows.filter(mine)


def event_actor(actor: Any, viewer: Any) -> str | None:
    """Who moved a request, as this viewer may see it: staff and auditors see usernames; a
    claimant sees its own holder's users by name and Trailmark's people by their role
    ("curator"), never their usernames."""
    if actor is None:
        return None
    if can(viewer, Capability.AUDIT):
        return str(actor.username)
    own = getattr(viewer, "rights_holder_id", None)
    if own is not None and actor.rights_holder_id == own:
        return str(actor.username)
    return str(role_of(actor))
