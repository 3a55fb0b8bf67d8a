import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("provenance", "0014_submitted_text_and_record_metadata")]
    operations = [
        migrations.CreateModel(
            name="LicenseRefTerms",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                           verbose_name="ID")),
                ("key", models.CharField(max_length=200, unique=True)),
                ("use_class", models.CharField(max_length=20, choices=[
                    ("commercial", "Commercial"), ("non-commercial", "Non Commercial"),
                    ("academic-only", "Academic Only"), ("unknown", "Unknown")])),
                ("requires_attribution", models.BooleanField(default=False)),
                ("share_alike", models.BooleanField(default=False)),
                ("reason", models.TextField()),
                ("set_at", models.DateTimeField(auto_now=True)),
                ("set_by", models.ForeignKey(null=True,
                                             on_delete=django.db.models.deletion.SET_NULL,
                                             related_name="+", to=settings.AUTH_USER_MODEL)),
            ],
            options={"ordering": ["key"]},
        ),
    ]
