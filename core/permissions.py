"""Who may do what: the roles, the named capabilities, and one table between them.

APIs, pages and services ask for a capability (`can`, `require`, or the DRF permission
`CapabilityPermission`), never for a set of roles: the table below is the only place that says
which roles hold what. Reads are further scoped by selectors (a rights-holder's queryset holds
only its own holder's rows); writes by a rights-holder are checked per object here.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import models
from rest_framework.permissions import SAFE_METHODS, BasePermission


class Role(models.TextChoices):
    """The values `User.role` stores (`User.Role` is this class)."""

    ADMIN = "admin"
    CURATOR = "curator"
    RIGHTS_HOLDER = "rights_holder"
    AUDITOR = "auditor"
    RESEARCHER = "researcher"


class Capability(StrEnum):
    SIGN_IN = "sign_in"                  # anything every signed-in user may do
    ADMINISTER = "administer"            # what no view opened to anyone else (the default)
    OPERATE = "operate"                  # the staff page and the admin site
    CURATE = "curate"                    # holders, sources, documents, checkpoints, indexes
    SEE_PERSONAL_DATA = "see_personal_data"  # every rights-holder's contact details
    MANAGE_OWN_SOURCES = "manage_own_sources"  # register sources, ingest into them
    READ_INGEST = "read_ingest"          # ingest jobs (a rights-holder: its own)
    BUILD_DATASETS = "build_datasets"    # curation jobs and dataset drafts
    TRAIN = "train"
    GENERATE = "generate"                # model outputs
    PUBLISH_CARDS = "publish_cards"
    READ_ALL = "read_all"                # every holder's sources, documents, models, reports
    AUDIT = "audit"                      # jobs, the ledger with its actors, every takedown
    START_ATTRIBUTION = "start_attribution"
    FILE_TAKEDOWN = "file_takedown"
    MOVE_TAKEDOWN = "move_takedown"      # scope, decide, remediate, verify; file for others


_ADMIN, _CURATOR, _HOLDER, _AUDITOR, _RESEARCHER = (
    Role.ADMIN, Role.CURATOR, Role.RIGHTS_HOLDER, Role.AUDITOR, Role.RESEARCHER)
_STAFF = frozenset({_ADMIN, _CURATOR})

GRANTS: dict[Capability, frozenset[str]] = {
    Capability.SIGN_IN: frozenset(Role.values),
    Capability.ADMINISTER: frozenset({_ADMIN}),
    Capability.OPERATE: _STAFF,
    Capability.CURATE: _STAFF,
    Capability.SEE_PERSONAL_DATA: _STAFF,
    Capability.MANAGE_OWN_SOURCES: _STAFF | {_HOLDER},
    Capability.READ_INGEST: _STAFF | {_AUDITOR, _HOLDER},
    Capability.BUILD_DATASETS: _STAFF | {_RESEARCHER},
    Capability.TRAIN: _STAFF | {_RESEARCHER},
    Capability.GENERATE: _STAFF | {_RESEARCHER},
    Capability.PUBLISH_CARDS: _STAFF | {_RESEARCHER},
    Capability.READ_ALL: _STAFF | {_AUDITOR, _RESEARCHER},
    Capability.AUDIT: _STAFF | {_AUDITOR},
    Capability.START_ATTRIBUTION: _STAFF | {_AUDITOR, _RESEARCHER},
    Capability.FILE_TAKEDOWN: _STAFF | {_HOLDER},
    Capability.MOVE_TAKEDOWN: _STAFF,
}
assert set(GRANTS) == set(Capability), "every capability needs a row"


def role_of(user: Any) -> str | None:
    if not getattr(user, "is_authenticated", False):
        return None
    return Role.ADMIN if user.is_superuser else user.role


def can(user: Any, capability: Capability) -> bool:
    return role_of(user) in GRANTS[capability]


def require(user: Any, capability: Capability,
            message: str = "your role does not allow this") -> None:
    """Raise PermissionDenied (answered 403) unless the user holds the capability."""
    if not can(user, capability):
        raise PermissionDenied(message)


def roles_with(capability: Capability) -> list[str]:
    """The roles holding a capability (for queries such as "e-mail every curator")."""
    return sorted(GRANTS[capability])


def holder_of(obj: Any) -> int | None:
    """The rights-holder an object belongs to, for the objects that have one."""
    for path in ("owner_id", "source.owner_id", "rights_holder_id"):
        target = obj
        for part in path.split("."):
            target = getattr(target, part, None)
        if target is not None:
            return target
    return None


def sees_holder_details(user: Any, holder_id: int | None) -> bool:
    """Who sees a rights-holder's personal data (a person holder's name, any holder's contact
    name and e-mail): staff, who handle its requests, and the holder's own users. Auditors and
    researchers read the rest of the record; their work needs no way to reach a person."""
    return can(user, Capability.SEE_PERSONAL_DATA) or (
        role_of(user) == Role.RIGHTS_HOLDER and holder_id is not None
        and user.rights_holder_id == holder_id)


class CapabilityPermission(BasePermission):
    """A view declares `anonymous_read` (bool), `read_capability` (default: SIGN_IN) and
    `write_capability` (default: ADMINISTER), optionally per action in
    `action_capabilities`. A rights-holder writes only objects of its own holder."""

    message = "your role does not allow this"

    def has_permission(self, request: Any, view: Any) -> bool:
        if request.method in SAFE_METHODS:
            if role_of(request.user) is None:
                return bool(getattr(view, "anonymous_read", False))
            return can(request.user, getattr(view, "read_capability", Capability.SIGN_IN))
        if role_of(request.user) is None:
            return False
        action = getattr(view, "action", None)
        needed = getattr(view, "action_capabilities", {}).get(
            action, getattr(view, "write_capability", Capability.ADMINISTER))
        return can(request.user, needed)

    def has_object_permission(self, request: Any, view: Any, obj: Any) -> bool:
        if request.method in SAFE_METHODS:
            return True
        if role_of(request.user) == Role.RIGHTS_HOLDER:
            return holder_of(obj) == request.user.rights_holder_id
        return True
