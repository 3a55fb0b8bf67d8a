"""The chunks' nearest-neighbour index (cosine: embeddings are unit length), built concurrently so
that the chunks table stays writable while it builds (a datastore may be building)."""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations
from pgvector.django import HnswIndex


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("retrieval", "0001_datastores_and_chunks")]
    operations = [
        AddIndexConcurrently(
            model_name="chunk",
            index=HnswIndex(name="chunk_embedding_hnsw", fields=["embedding"], m=16,
                            ef_construction=64, opclasses=["vector_cosine_ops"]),
        ),
    ]
