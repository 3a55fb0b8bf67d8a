"""Admin: browse everything; change only what has no service behind it (users). Governance writes
go through the API so that they are validated and recorded in the ledger."""

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

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


@admin.register(m.RightsHolder)
class RightsHolderAdmin(ReadOnlyAdmin):
    list_display = ["name", "kind", "contact_email", "verified"]
    search_fields = ["name"]


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
