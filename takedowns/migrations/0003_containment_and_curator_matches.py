from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("takedowns", "0002_unlearning_runs_and_output_filters")]
    operations = [
        migrations.AddField(model_name="takedownmatch", name="note",
                            field=models.TextField(blank=True)),
        migrations.AlterField(
            model_name="takedownmatch", name="method",
            field=models.CharField(max_length=20, choices=[
                ("exact", "Same normalised text (sha256)"),
                ("near_duplicate", "MinHash near-duplicate"),
                ("embedding", "Embedding neighbour"), ("source", "In a claimed source"),
                ("verbatim_span", "Verbatim spans (attribution span index)"),
                ("containment", "The sample's words, in order, inside the document"),
                ("curator", "Added by a curator")])),
    ]
