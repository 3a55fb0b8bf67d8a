from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("provenance", "0015_license_ref_terms")]
    operations = [
        migrations.AddField(model_name="trainingrun", name="plan",
                            field=models.JSONField(blank=True, default=dict)),
    ]
