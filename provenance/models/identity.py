"""Who: rights-holders and users (each user has one role; what a role may do is in
core.permissions)."""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import Q

from core.models import TimeStamped
from core.permissions import Role


class RightsHolder(TimeStamped):
    class Kind(models.TextChoices):
        ORGANISATION = "organisation"
        PERSON = "person"

    name = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.ORGANISATION)
    contact_name = models.CharField(max_length=200, blank=True)
    contact_email = models.EmailField(blank=True)
    url = models.URLField(blank=True)
    verified = models.BooleanField(default=False)
    verified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    PRIVATE_INDIVIDUAL = "a private individual"

    @property
    def public_name(self) -> str:
        """How cards, public pages and roles without a need for it name this holder: a person's
        name is personal data (the ledger keeps it only as an erasable commitment too)."""
        return self.PRIVATE_INDIVIDUAL if self.kind == self.Kind.PERSON else self.name


class User(AbstractUser):
    Role = Role  # core.permissions.Role: the roles and what each may do live there

    role = models.CharField(max_length=20, choices=Role.choices, default=Role.RESEARCHER)
    rights_holder = models.ForeignKey(
        RightsHolder, null=True, blank=True, on_delete=models.PROTECT, related_name="users"
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                name="user_rights_holder_iff_role",
                condition=(Q(role="rights_holder", rights_holder__isnull=False)
                           | (~Q(role="rights_holder") & Q(rights_holder__isnull=True))),
            )
        ]
