"""Opt-out signals read into two preferences, train and ai_input, with the terms that decided.

Signals recorded from here on are read by provenance/engine/preferences when recorded. Those
recorded before have only a person's reading, `opted_out` ("reserves the rights against
TDM/AI"); a migration is frozen and may not run today's reader, so each keeps that reading as
it was meant: opted out is a refusal of both uses by a term of vocabulary "recorded", and the
raw value is reported as not yet read (record the signal again to have it read). Curation
decides as before (the train verdict of an opted-out source is no). The table is append-only;
its trigger is off for this backfill only. Batched, and rerunnable: a row already read (a
non-empty reading) is left alone.
"""

from urllib.parse import urlparse

from django.db import migrations, models

BATCH = 1000
RECORDED = "opted_out=true as recorded before signals were read (migration 0020)"
UNREAD = "recorded before signals were read (migration 0020): record it again to have it read"


def read_existing(apps, schema_editor):
    Signal = apps.get_model("provenance", "OptOutSignal")
    # ALTER TABLE refuses while deferred constraint checks are queued in this transaction.
    schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    schema_editor.execute("ALTER TABLE provenance_optoutsignal "
                          "DISABLE TRIGGER opt_out_append_only")
    while batch := list(Signal.objects.filter(reading={}).select_related("source")[:BATCH]):
        for signal in batch:
            terms = [{"usage": usage, "pref": "no", "vocabulary": "recorded", "says": RECORDED}
                     for usage in ("train", "ai_input")] if signal.opted_out else []
            signal.train = signal.ai_input = "no" if signal.opted_out else "unknown"
            signal.reading = {"terms": terms, "unknown": [UNREAD],
                              "path": urlparse(signal.source.uri).path or "/", "notes": []}
        Signal.objects.bulk_update(batch, ["train", "ai_input", "reading"])
    schema_editor.execute("ALTER TABLE provenance_optoutsignal "
                          "ENABLE TRIGGER opt_out_append_only")


class Migration(migrations.Migration):

    dependencies = [
        ('provenance', '0019_ingest_shards'),
    ]

    operations = [
        migrations.AddField(
            model_name='optoutsignal',
            name='ai_input',
            field=models.CharField(choices=[('yes', 'Yes'), ('no', 'No'), ('unknown', 'Unknown')], default='unknown', max_length=10),
        ),
        migrations.AddField(
            model_name='optoutsignal',
            name='reading',
            field=models.JSONField(default=dict),
        ),
        migrations.AddField(
            model_name='optoutsignal',
            name='train',
            field=models.CharField(choices=[('yes', 'Yes'), ('no', 'No'), ('unknown', 'Unknown')], default='unknown', max_length=10),
        ),
        migrations.AddField(
            model_name='optoutsignal',
            name='url',
            field=models.CharField(blank=True, default='', max_length=2000),
        ),
        migrations.AlterField(
            model_name='optoutsignal',
            name='kind',
            field=models.CharField(choices=[('robots_txt', 'Robots Txt'), ('ai_txt', 'Ai Txt'), ('tdmrep', 'Tdmrep'), ('http_header', 'Http Header'), ('rsl', 'Rsl'), ('registry', 'Registry')], max_length=20),
        ),
        migrations.RunPython(read_existing, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name='optoutsignal',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('opted_out', True), ('train', 'no')), models.Q(('opted_out', False), models.Q(('train', 'no'), _negated=True)), _connector='OR'), name='opt_out_signal_opted_out_is_train_no'),
        ),
    ]
