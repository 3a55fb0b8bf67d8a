"""Admin: browse everything; change only what has no service behind it (users). Governance writes
go through the API so that they are validated and recorded in the ledger."""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from django.core.exceptions import ValidationError
from django.http import HttpRequest

from core.permissions import Capability, can
from provenance import models as m


@admin.register(m.User)
class TrailmarkUserAdmin(UserAdmin):
    fieldsets = [*(UserAdmin.fieldsets or ()),
                 ("Trailmark", {"fields": ["role", "rights_holder"]})]
    list_display = ["username", "email", "role", "rights_holder", "is_active"]
    list_filter = ["role", "is_active"]


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


class OnboardForm(forms.ModelForm):
    """The holder's fields and its first user's: one action, through the onboarding service."""

    username = forms.RegexField(r"^[\w.@+-]+\Z", max_length=150,
                                help_text="the first user's username")
    email = forms.EmailField(help_text="the first user's address: the invitation goes there")
    password = forms.CharField(required=False, strip=False, widget=forms.PasswordInput,
                               help_text="leave empty to e-mail an invitation instead")

    class Meta:
        model = m.RightsHolder
        fields = ["name", "kind", "contact_name", "contact_email", "url", "verified"]

    def clean_username(self) -> str:
        username: str = self.cleaned_data["username"]
        if m.User.objects.filter(username__iexact=username).exists():
            raise ValidationError(f"the username {username!r} is taken")
        return username

    def clean_password(self) -> str:
        from django.contrib.auth.password_validation import validate_password

        password: str = self.cleaned_data.get("password") or ""
        if password:
            validate_password(password)
        return password


@admin.register(m.RightsHolder)
class RightsHolderAdmin(ReadOnlyAdmin):
    """Read-only, except "add": onboarding (the holder and its first user, or an invitation),
    validated and recorded in the ledger like the API's `POST /api/v1/rights-holders/onboard/`."""

    list_display = ["name", "kind", "contact_email", "verified"]
    search_fields = ["name"]
    add_form = OnboardForm

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return can(request.user, Capability.OPERATE)

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False,
                 **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = self.add_form
        return super().get_form(request, obj, change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return [*OnboardForm.Meta.fields, "username", "email", "password"]
        return super().get_fields(request, obj)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        from provenance.services.onboarding import rights_holder_onboard

        data = form.cleaned_data
        actor = request.user if isinstance(request.user, m.User) else None
        try:
            done = rights_holder_onboard(
                actor=actor, username=data["username"], email=data["email"],
                password=data.get("password") or "", verified=data.get("verified", False),
                **{k: data[k] for k in ("name", "kind", "contact_name", "contact_email", "url")})
        except ValidationError as exc:  # raced past the form's checks: say so, keep nothing
            messages.error(request, "; ".join(exc.messages))
            raise
        obj.pk, obj._state.adding = done.holder.pk, False
        messages.info(request, f"{done.user.username} can sign in now" if not
                      done.invitation_url else f"an invitation went to {done.user.email}")

    def save_related(self, request: HttpRequest, form: Any, formsets: Any,
                     change: bool) -> None:
        pass  # nothing related: the service wrote everything


@admin.register(m.DataSource)
class DataSourceAdmin(ReadOnlyAdmin):
    list_display = ["name", "owner", "license_expression", "use_class", "status", "document_count"]
    list_filter = ["use_class", "status"]
    search_fields = ["name"]


@admin.register(m.Document)
class DocumentAdmin(ReadOnlyAdmin):
    list_display = ["id", "sha256", "byte_count", "removed_at"]
    search_fields = ["sha256"]
    exclude = ["minhash", "embedding"]


@admin.register(m.DatasetVersion)
class DatasetVersionAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "state", "document_count", "manifest_root", "published_at"]
    list_filter = ["state"]


@admin.register(m.IngestJob, m.CurationJob)
class JobAdmin(ReadOnlyAdmin):
    list_display = ["id", "state", "stage", "position", "total", "created_at", "finished_at"]
    list_filter = ["state"]


@admin.register(m.LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = ["seq", "created_at", "actor_label", "event", "subject_type", "subject_id"]
    list_filter = ["event"]
