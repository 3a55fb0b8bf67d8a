from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("attribution", "0005_output_filtered")]
    operations = [
        migrations.AddField(model_name="modeloutput", name="note",
                            field=models.CharField(blank=True, default="", max_length=500)),
    ]
