"""A partial index over the documents still waiting for an embedding, so that the embedding task
and the recovery sweep find the backlog without reading every document. Built concurrently: the
documents table stays writable while it builds."""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models
from django.db.models import Q


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("provenance", "0011_truncate_guards_and_append_only_checkpoints")]
    operations = [
        AddIndexConcurrently(
            model_name="document",
            index=models.Index(condition=Q(embedding__isnull=True, text_purged=False),
                               fields=["id"], name="document_embedding_pending"),
        ),
    ]
