"""Documents keep the text as submitted: `sha256` hashes it, `normalised_sha256` its normalised
form. Every document stored before this migration holds normalised text, so both hashes are the
one it has. Occurrences keep their record's metadata; ingest jobs report the fields kept."""

from django.db import migrations, models
from django.db.models import Q


class Migration(migrations.Migration):
    dependencies = [("provenance", "0013_datasource_license_as_written")]
    operations = [
        migrations.AddField(
            model_name="document", name="normalised_sha256",
            field=models.CharField(max_length=64, default="", db_index=True),
            preserve_default=False),
        migrations.RunSQL(
            "UPDATE provenance_document SET normalised_sha256 = sha256",
            reverse_sql=migrations.RunSQL.noop),
        migrations.AddConstraint(
            model_name="document",
            constraint=models.CheckConstraint(
                name="document_normalised_sha256_hex",
                condition=Q(normalised_sha256__regex=r"^[0-9a-f]{64}$"))),
        migrations.AddField(model_name="occurrence", name="metadata",
                            field=models.JSONField(blank=True, default=dict)),
        migrations.AddField(model_name="ingestjob", name="fields_kept",
                            field=models.JSONField(blank=True, default=dict)),
        migrations.AddField(model_name="ingestjob", name="rows_metadata_dropped",
                            field=models.PositiveBigIntegerField(default=0)),
    ]
