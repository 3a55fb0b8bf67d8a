"""A published card is corrected by a new revision: one version, several cards."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("dashboards", "0003_version_composition"),
                    ("provenance", "0014_submitted_text_and_record_metadata")]
    operations = [
        migrations.AlterField(
            model_name="versioncard", name="version",
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT,
                                    related_name="cards", to="provenance.datasetversion")),
        migrations.AddField(model_name="versioncard", name="revision",
                            field=models.PositiveIntegerField(default=1)),
        migrations.AddField(model_name="versioncard", name="reason",
                            field=models.TextField(blank=True)),
        migrations.AlterModelOptions(name="versioncard",
                                     options={"ordering": ["version", "-revision"]}),
        migrations.AddConstraint(
            model_name="versioncard",
            constraint=models.UniqueConstraint(fields=["version", "revision"],
                                               name="card_revision_unique")),
    ]
