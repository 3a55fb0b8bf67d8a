"""Who may do what. Reads are scoped by selectors (a rights-holder's queryset holds only its own
holder's rows); writes are decided here by role, then per object for rights-holders."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import SAFE_METHODS, BasePermission

from provenance.models import User

Role = User.Role
STAFF = frozenset({Role.ADMIN, Role.CURATOR})


def role_of(user: Any) -> str | None:
    if not getattr(user, "is_authenticated", False):
        return None
    return Role.ADMIN if user.is_superuser else user.role


def sees_holder_details(user: Any, holder_id: int | None) -> bool:
    """Who sees a rights-holder's personal data (a person holder's name, any holder's contact
    name and e-mail): staff, who handle its requests, and the holder's own users. Auditors and
    researchers read the rest of the record; their work needs no way to reach a person."""
    role = role_of(user)
    return role in STAFF or (role == Role.RIGHTS_HOLDER and holder_id is not None
                             and user.rights_holder_id == holder_id)


def holder_of(obj: Any) -> int | None:
    """The rights-holder an object belongs to, for the objects that have one."""
    for path in ("owner_id", "source.owner_id", "rights_holder_id"):
        target = obj
        for part in path.split("."):
            target = getattr(target, part, None)
        if target is not None:
            return target
    return None


class RolePermission(BasePermission):
    """A view declares `anonymous_read` (bool), `read_roles` (default: every signed-in role) and
    `write_roles` (default: admin), optionally per action with `action_write_roles`."""

    message = "your role does not allow this"

    def has_permission(self, request: Any, view: Any) -> bool:
        role = role_of(request.user)
        if request.method in SAFE_METHODS:
            if role is None:
                return bool(getattr(view, "anonymous_read", False))
            return role in getattr(view, "read_roles", Role.values)
        if role is None:
            return False
        action = getattr(view, "action", None)
        allowed = getattr(view, "action_write_roles", {}).get(
            action, getattr(view, "write_roles", {Role.ADMIN}))
        return role in allowed

    def has_object_permission(self, request: Any, view: Any, obj: Any) -> bool:
        if request.method in SAFE_METHODS:
            return True
        if role_of(request.user) == Role.RIGHTS_HOLDER:
            return holder_of(obj) == request.user.rights_holder_id
        return True
