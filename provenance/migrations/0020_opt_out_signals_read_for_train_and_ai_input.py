"""Opt-out signals read into two preferences, train and ai_input, with the terms that decided.

Existing signals are read by today's reader (provenance/engine/preferences) for their source's
path. Their recorded `opted_out` was a person's reading ("reserves the rights against TDM/AI").
Where it said out and the reader finds nothing at all (a value no reader understands, a registry
entry), a term of vocabulary "recorded" keeps that refusal for both uses; where the reader finds
terms but no refusal of training, the recorded refusal of training is kept beside them. So no
source that curation left out comes back in. The table is append-only; its trigger is off for this backfill only.
Batched and rerunnable: a row already read (non-empty reading) is left alone.
"""

from urllib.parse import urlparse

from django.db import migrations, models

BATCH = 1000
RECORDED = "opted_out=true as recorded before signals were read (migration 0020)"


def read_existing(apps, schema_editor):
    from provenance.engine import preferences as prefs

    Signal = apps.get_model("provenance", "OptOutSignal")
    # ALTER TABLE refuses while deferred constraint checks are queued in this transaction.
    schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    schema_editor.execute("ALTER TABLE provenance_optoutsignal "
                          "DISABLE TRIGGER opt_out_append_only")
    while batch := list(Signal.objects.filter(reading={}).select_related("source")[:BATCH]):
        for signal in batch:
            path = urlparse(signal.source.uri).path or "/"
            try:
                reading = (prefs.read(signal.kind, signal.value, path)
                           if signal.kind != "registry" else prefs.Reading(path=path))
            except prefs.Unreadable as e:
                reading = prefs.Reading(unknown=(f"unreadable: {e}",), path=path)
            terms = list(reading.terms)
            if signal.opted_out and not terms:  # the person's reading is the only one
                terms = [prefs.Term(u, prefs.Pref.NO, "recorded", RECORDED)
                         for u in ("train", "ai_input")]
            elif signal.opted_out and reading.decide("train")[0] is not prefs.Pref.NO:
                terms.append(prefs.Term("train", prefs.Pref.NO, "recorded", RECORDED))
            reading = prefs.Reading(tuple(terms), reading.unknown, path, reading.notes)
            signal.train = reading.decide("train")[0].value
            signal.ai_input = reading.decide("ai_input")[0].value
            signal.opted_out = signal.train == "no"
            signal.reading = reading.as_dict()
        Signal.objects.bulk_update(batch, ["train", "ai_input", "opted_out", "reading"])
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
