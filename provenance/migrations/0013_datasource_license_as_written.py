from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("provenance", "0012_document_embedding_pending")]
    operations = [
        migrations.AddField(
            model_name="datasource", name="license_as_written",
            field=models.CharField(blank=True, default="", max_length=500)),
    ]
