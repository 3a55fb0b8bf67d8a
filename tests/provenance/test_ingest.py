import csv
import hashlib

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.core.exceptions import ValidationError

from provenance.models import DataSource, Document, IngestJob, Occurrence
from provenance.services.documents import document_tombstone
from provenance.services.ingest import ingest_path, ingest_run
from tests.helpers import words

pytestmark = pytest.mark.django_db


def test_bad_rows_are_reported_with_file_line_and_reason_and_good_rows_commit(
        make_source, write_jsonl, settings):
    settings.TRAILMARK = {**settings.TRAILMARK, "INGEST_MAX_DOC_BYTES": 200}
    source = make_source()
    path = write_jsonl([{"text": "first good document"}, "{broken", {"body": "x"},
                        {"text": "y" * 300}, {"text": "second good document"}])
    job = ingest_path(source=source, path=path, actor=None)
    assert job.state == IngestJob.State.SUCCEEDED
    assert (job.rows_read, job.rows_added, job.rows_bad) == (5, 2, 3)
    assert [(e["file"], e["line"]) for e in job.errors] == [
        ("data.jsonl", 2), ("data.jsonl", 3), ("data.jsonl", 4)]
    assert "invalid JSON" in job.errors[0]["reason"]
    assert "missing text field" in job.errors[1]["reason"]
    assert "over the 200-byte limit" in job.errors[2]["reason"]
    assert Document.objects.count() == 2


def test_ingesting_the_same_file_again_adds_nothing(make_source, write_jsonl):
    source = make_source()
    path = write_jsonl([{"text": words(i)} for i in range(120)])  # several batches of 50
    first = ingest_path(source=source, path=path, actor=None)
    second = ingest_path(source=source, path=path, actor=None)
    assert (first.rows_added, first.rows_duplicate) == (120, 0)
    assert (second.rows_added, second.rows_linked, second.rows_duplicate) == (0, 0, 120)
    assert Document.objects.count() == Occurrence.objects.count() == 120
    source.refresh_from_db()
    assert source.document_count == 120


def test_the_same_text_in_two_sources_is_one_document_linked_to_both(make_source, ingest_texts):
    a, b = make_source(), make_source()
    ingest_texts(a, ["shared text\nhere", "only in a"])
    job = ingest_texts(b, ["shared text\nhere", "only in b"])
    assert (job.rows_added, job.rows_linked) == (1, 1)
    shared = Document.objects.get(text="shared text\nhere")
    assert set(shared.sources.values_list("pk", flat=True)) == {a.pk, b.pk}
    assert Document.objects.count() == 3


def test_the_submitted_text_is_stored_as_it_came_with_both_hashes(make_source, ingest_texts):
    verse = "Roses are red,\n    violets are blue;\n\nsugar is sweet.\n"
    ingest_texts(make_source(), [verse])
    ingest_texts(make_source(), ["Roses are red, violets are blue; sugar is sweet."])
    stored, folded = Document.objects.order_by("pk")
    assert stored.text == verse  # the layout is kept
    assert stored.sha256 == hashlib.sha256(verse.encode()).hexdigest()
    assert stored.byte_count == len(verse.encode())
    # another layout of the same words is another text, with the same normalised hash
    assert folded.sha256 != stored.sha256
    assert folded.normalised_sha256 == stored.normalised_sha256 == hashlib.sha256(
        b"Roses are red, violets are blue; sugar is sweet.").hexdigest()


def test_every_record_field_is_kept_as_the_occurrences_metadata(make_source, write_jsonl):
    source = make_source()
    path = write_jsonl([
        {"text": "To be or not to be -- Shakespeare", "id": "q1", "author": "Shakespeare",
         "title": "Hamlet", "tags": ["drama"], "url": "https://example.org/q1"},
        {"text": "a second quotation", "author": "Anon", "category": "proverb"}])
    job = ingest_path(source=source, path=path, actor=None)
    assert job.fields_kept == {"id": 1, "author": 2, "title": 1, "tags": 1, "url": 1,
                               "category": 1}
    assert job.rows_metadata_dropped == 0
    first = Occurrence.objects.get(external_id="q1")
    assert first.url == "https://example.org/q1"
    assert first.metadata == {"id": "q1", "author": "Shakespeare", "title": "Hamlet",
                              "tags": ["drama"], "url": "https://example.org/q1"}
    assert Occurrence.objects.get(document__text="a second quotation").metadata == {
        "author": "Anon", "category": "proverb"}


def test_a_layout_variant_of_removed_content_is_blocked_too(make_source, ingest_texts):
    ingest_texts(make_source(), ["taken   down\ntext"])
    document_tombstone(document=Document.objects.get(), actor=None, reason="takedown 1",
                       purge_text=True)
    job = ingest_texts(make_source(), ["taken down text", "fine"])
    assert (job.rows_added, job.rows_blocked) == (1, 1)
    assert not Document.objects.filter(text="taken down text").exists()


def test_repeats_inside_one_batch_are_duplicates(make_source, ingest_texts):
    job = ingest_texts(make_source(), ["same", "same", "other"])
    assert (job.rows_added, job.rows_duplicate) == (2, 1)


def test_removed_content_is_not_ingested_again(make_source, ingest_texts):
    source = make_source()
    ingest_texts(source, ["to be removed"])
    document_tombstone(document=Document.objects.get(), actor=None, reason="takedown 1",
                       purge_text=True)
    job = ingest_texts(make_source(), ["to be removed"])
    assert (job.rows_added, job.rows_linked, job.rows_blocked) == (0, 0, 1)
    assert Occurrence.objects.count() == 1


def test_csv_folder_and_parquet_ingest_the_same_way(make_source, tmp_path):
    source = make_source()
    with (tmp_path / "a.csv").open("w", newline="") as out:
        csv.writer(out).writerows([["text", "id"], ["from csv", "c1"]])
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "one.txt").write_text("from folder")
    pq.write_table(pa.table({"text": ["from parquet"]}), tmp_path / "p.parquet")
    for name in ["a.csv", "folder", "p.parquet"]:
        job = ingest_path(source=source, path=tmp_path / name, actor=None)
        assert (job.state, job.rows_added) == (IngestJob.State.SUCCEEDED, 1), job.error
    assert set(Document.objects.values_list("text", flat=True)) == {
        "from csv", "from folder", "from parquet"}
    assert Occurrence.objects.get(document__text="from csv").external_id == "c1"


def test_an_unreadable_file_is_refused_before_a_job_starts(make_source, tmp_path):
    (tmp_path / "x.csv").write_text("id,body\n1,hi\n")
    with pytest.raises(ValidationError, match="no column 'text'"):
        ingest_path(source=make_source(), path=tmp_path / "x.csv", actor=None)
    assert not IngestJob.objects.exists()


def test_an_interrupted_job_resumes_after_its_last_committed_batch(make_source, write_jsonl):
    """A worker killed mid-ingest leaves the job 'running' with the counters of its committed
    batches; the redelivered task goes on from there, with no duplicate rows or counts."""
    source = make_source()
    path = write_jsonl([{"text": words(i)} for i in range(130)])
    job = IngestJob.objects.create(source=source, path=str(path), format="jsonl")

    class Killed(BaseException):  # like SIGKILL: nothing in the job gets to handle it
        pass

    def kill_after_first_batch(j):
        raise Killed

    with pytest.raises(Killed):
        ingest_run(job_id=job.pk, on_progress=kill_after_first_batch)
    job.refresh_from_db()
    assert (job.state, job.rows_read, Document.objects.count()) == ("running", 50, 50)

    ingest_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.state == IngestJob.State.SUCCEEDED
    assert (job.rows_read, job.rows_added, job.rows_duplicate) == (130, 130, 0)
    assert Document.objects.count() == Occurrence.objects.count() == 130
    assert DataSource.objects.get(pk=source.pk).document_count == 130


def test_a_finished_job_is_not_run_twice(make_source, write_jsonl):
    job = ingest_path(source=make_source(), path=write_jsonl([{"text": "a"}]), actor=None)
    assert ingest_run(job_id=job.pk) is None


def test_a_job_whose_file_vanished_fails_cleanly(make_source, write_jsonl):
    path = write_jsonl([{"text": "a"}])
    job = IngestJob.objects.create(source=make_source(), path=str(path), format="jsonl")
    path.unlink()
    ingest_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.state == IngestJob.State.FAILED and "no such file" in job.error


def test_text_postgres_cannot_store_is_handled_row_by_row(make_source, write_jsonl):
    path = write_jsonl(['{"text": "nul \\u0000 inside", "id": "x\\u0000y"}',
                        '{"text": "lone \\ud800 surrogate"}', '{"text": "fine"}'])
    job = ingest_path(source=make_source(), path=path, actor=None)
    assert (job.state, job.rows_added, job.rows_bad) == (IngestJob.State.SUCCEEDED, 2, 1)
    assert job.errors[0]["line"] == 2 and "surrogate" in job.errors[0]["reason"]
    assert Document.objects.filter(text="nul  inside").exists()  # only the NUL dropped
    assert Occurrence.objects.filter(external_id="xy").exists()


def test_a_records_declared_language_is_kept_as_a_standard_tag(make_source, write_jsonl, tmp_path):
    source = make_source()
    path = write_jsonl([{"text": "bonjour tout le monde", "language": "fra"},
                        {"text": "good morning everyone", "lang": "EN_gb"},
                        {"text": "no language here"},
                        {"text": "a language that is not one", "language": "klingon!"}])
    ingest_path(source=source, path=path, actor=None)
    assert dict(Document.objects.values_list("text", "language")) == {
        "bonjour tout le monde": "fr", "good morning everyone": "en-GB",
        "no language here": "", "a language that is not one": ""}
    table = tmp_path / "rows.csv"
    with table.open("w", newline="") as out:
        csv.writer(out).writerows([["text", "lang"], ["guten Tag zusammen", "de"]])
    ingest_path(source=source, path=table, actor=None)
    assert Document.objects.get(text="guten Tag zusammen").language == "de"


def test_each_batch_finds_known_documents_through_the_hash_index(make_source, ingest_texts):
    """The staging table's sha256 once was char(64): PostgreSQL then cast every document's hash
    to compare them and scanned the whole table per batch (861 docs/s at 10^6 documents, 5,449
    with the index)."""
    from django.db import connection

    from provenance.services.ingest_write import COUNT_BLOCKED_SQL, INSERT_OCCURRENCES_SQL

    ingest_texts(make_source(), ["a text to stage"])
    with connection.cursor() as cursor:
        cursor.execute("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid"
                       " = %s::regclass AND attname = 'sha256'", ["trailmark_ingest_stage"])
        staged = cursor.fetchone()[0]
        cursor.execute("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid"
                       " = 'provenance_document'::regclass AND attname = 'sha256'")
        assert staged == cursor.fetchone()[0]
        cursor.execute("SET LOCAL enable_seqscan = off")  # the tables here are tiny
        for sql in (INSERT_OCCURRENCES_SQL, COUNT_BLOCKED_SQL):
            cursor.execute("EXPLAIN " + sql, {"source": 1, "job": 1})
            plan = "\n".join(row[0] for row in cursor.fetchall())
            assert "Seq Scan on provenance_document" not in plan, plan


def test_the_cli_fails_once_on_a_binary_file_and_when_every_row_is_bad(make_source, tmp_path,
                                                                       write_jsonl):
    from django.core.management import CommandError, call_command

    source = make_source(name="cli-source")
    binary = tmp_path / "archive.jsonl"
    binary.write_bytes(b"PK\x03\x04" + bytes(range(256)) * 40)
    with pytest.raises(CommandError, match="archive.jsonl: a binary file"):
        call_command("ingest", source.name, str(binary), "--quiet")
    assert not IngestJob.objects.exists()
    bad = write_jsonl(["{broken", {"body": "no text"}], name="bad.jsonl")
    with pytest.raises(CommandError, match="every row was bad, nothing was ingested"):
        call_command("ingest", source.name, str(bad), "--quiet")


def test_a_document_shows_its_hashes_and_each_visible_occurrence_with_metadata(
        make_source, write_jsonl, client_as, holder_a, holder_b):
    mine, theirs = make_source(owner=holder_a), make_source(owner=holder_b)
    text = "Shared line\nwith layout"
    ingest_path(source=mine, path=write_jsonl([{"text": text, "author": "Ada"}], "a.jsonl"),
                actor=None)
    job = ingest_path(source=theirs, actor=None,
                      path=write_jsonl([{"text": text, "secret": "holder b's note"}], "b.jsonl"))
    doc = Document.objects.get()
    staff = client_as("curator").get(f"/api/v1/documents/{doc.pk}/").json()
    assert staff["text"] == text
    assert staff["sha256"] == hashlib.sha256(text.encode()).hexdigest()
    assert staff["normalised_sha256"] == hashlib.sha256(b"Shared line with layout").hexdigest()
    assert [(o["source_name"], o["metadata"]) for o in staff["occurrences"]] == [
        (mine.name, {"author": "Ada"}), (theirs.name, {"secret": "holder b's note"})]
    holder = client_as("holder_a").get(f"/api/v1/documents/{doc.pk}/").json()
    assert [o["metadata"] for o in holder["occurrences"]] == [{"author": "Ada"}]
    report = client_as("curator").get(f"/api/v1/ingest-jobs/{job.pk}/").json()
    assert report["fields_kept"] == {"secret": 1} and report["rows_metadata_dropped"] == 0


def test_batches_prepared_in_processes_store_what_one_process_stores(
        make_source, write_jsonl, settings):
    """A large input is prepared by other processes (spawned, so they share nothing with this
    one): the same documents, fingerprints, metadata and counts as preparing it here, and a job
    interrupted on the way resumes after its last committed batch as before."""
    records = [{"text": words(i % 170, 40), "id": f"r{i}", "lang": "en"} for i in range(200)]
    records[7] = {"body": "no text"}

    def run(name, processes, kill_after=None):
        settings.TRAILMARK = {**settings.TRAILMARK, "INGEST_PROCESSES": processes,
                              "INGEST_PROCESSES_FROM_BYTES": 0, "INGEST_BATCH_SIZE": 30}
        source = make_source(name=name)
        job = IngestJob.objects.create(source=source, path=str(write_jsonl(
            records, name=f"{name}.jsonl")), format="jsonl")
        if kill_after is not None:
            seen = []

            def kill(j):
                seen.append(j)
                if len(seen) == kill_after:
                    raise KeyboardInterrupt

            with pytest.raises(KeyboardInterrupt):
                ingest_run(job_id=job.pk, on_progress=kill)
        ingest_run(job_id=job.pk)
        job.refresh_from_db()
        stored = sorted(Occurrence.objects.filter(source=source).values_list(
            "document__sha256", "document__minhash", "document__language", "external_id", "line"))
        return job, [(sha, bytes(mh), lang, ext, line) for sha, mh, lang, ext, line in stored]

    here, stored_here = run("here", 1)
    apart, stored_apart = run("apart", 2, kill_after=3)
    assert here.state == apart.state == IngestJob.State.SUCCEEDED
    assert stored_apart == stored_here and len(stored_here) == 170  # 199 good rows, 170 texts
    counts = ("rows_read", "rows_bad", "rows_duplicate", "fields_kept")
    assert [getattr(apart, c) for c in counts] == [getattr(here, c) for c in counts]
    assert [(e["line"], e["reason"]) for e in apart.errors] == [
        (e["line"], e["reason"]) for e in here.errors] == [(8, "missing text field 'text'")]
    assert (here.rows_added, apart.rows_added, apart.rows_linked) == (170, 0, 170)
