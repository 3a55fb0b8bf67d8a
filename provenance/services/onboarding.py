"""Onboarding a rights-holder in one action: the holder and its first user, who either gets a
password now or an invitation to choose one (a one-time link, valid for PASSWORD_RESET_TIMEOUT).
One transaction: a refused username leaves no holder behind."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from core.conf import setting
from core.mail import mail_on_commit
from provenance.ledger.append import ledger_append
from provenance.models import RightsHolder, User
from provenance.services.sources import rights_holder_create


@dataclass(frozen=True)
class Onboarded:
    holder: RightsHolder
    user: User
    invitation_url: str  # "" when a password was given


def invitation_url(user: User) -> str:
    """The one-time link where an invited user chooses a password (it stops working once used,
    or when the password changes, or after PASSWORD_RESET_TIMEOUT)."""
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    return f"{str(setting('PUBLIC_URL')).rstrip('/')}/accounts/invitation/{uid}/{token}/"


@transaction.atomic
def rights_holder_onboard(*, actor: User | None, username: str, email: str,
                          password: str = "", verified: bool = False,
                          **holder_fields: Any) -> Onboarded:
    """Create the holder and its first user; without a password, e-mail an invitation."""
    if User.objects.filter(username__iexact=username).exists():
        raise ValidationError({"username": f"the username {username!r} is taken"})
    holder = rights_holder_create(actor=actor, verified=verified, **holder_fields)
    user = User(username=username, email=email, role=User.Role.RIGHTS_HOLDER,
                rights_holder=holder)
    if password:
        try:
            validate_password(password, user)
        except ValidationError as exc:
            raise ValidationError({"password": exc.messages}) from None
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.full_clean(exclude=["password"])
    user.save()
    link = "" if password else invitation_url(user)
    ledger_append(actor=actor, event="rights_holder.user_added", subject=holder,
                  payload={"user": user.pk, "invited": not password})
    if link:
        days = round(settings.PASSWORD_RESET_TIMEOUT / 86_400, 1)
        mail_on_commit(
            "[Trailmark] Your rights-holder account",
            f"An account was opened for {holder.name} on Trailmark, where you can register "
            f"your sources, file takedown requests and follow them.\n\n"
            f"Username: {user.username}\nChoose your password here (the link works once, for "
            f"{days:g} days):\n{link}\n", [email])
    return Onboarded(holder=holder, user=user, invitation_url=link)
