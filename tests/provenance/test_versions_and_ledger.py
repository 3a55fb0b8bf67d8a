import pytest
from django.db import IntegrityError, connection, transaction

from provenance.engine.merkle import main as merkle_main
from provenance.engine.merkle import manifest_root
from provenance.ledger.append import ledger_append
from provenance.ledger.proofs import ledger_verify_chain
from provenance.models import Document, LedgerEntry, OptOutSignal, VersionMember
from provenance.services import curation, datasets, sources, usage
from provenance.services.documents import document_tombstone
from tests.factories import DatasetFactory
from tests.helpers import words

pytestmark = pytest.mark.django_db


@pytest.fixture
def published(make_source, ingest_texts):
    source = make_source(license_expression="CC0-1.0")
    ingest_texts(source, [words(i, 60) for i in range(8)])
    dataset = DatasetFactory()
    recipe = datasets.recipe_validate({"intended_use": "commercial"})
    draft = curation.version_create_from_plan(dataset=dataset, recipe=recipe,
                                              plan=curation.curation_plan(recipe), actor=None)
    return datasets.dataset_version_publish(version=draft, actor=None)


def refused(sql: str, params=()) -> bool:
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, params)
    except IntegrityError as exc:
        assert "trailmark:" in str(exc)
        return True
    return False


def test_the_database_refuses_any_change_to_a_published_version(published, ingest_texts):
    member = published.members.first()
    ingest_texts(member.source, ["a text that came after publishing"])
    newcomer = Document.objects.get(text="a text that came after publishing")
    v = published.pk
    assert refused("UPDATE provenance_versionmember SET source_id = source_id WHERE id = %s",
                   [member.pk])
    assert refused("DELETE FROM provenance_versionmember WHERE version_id = %s", [v])
    assert refused("INSERT INTO provenance_versionmember (version_id, document_id, source_id) "
                   "VALUES (%s, %s, %s)", [v, newcomer.pk, member.source_id])
    assert refused("INSERT INTO provenance_versionexclusion (version_id, document_id, source_id,"
                   " reason, detail) VALUES (%s, %s, %s, 'license', '')",
                   [v, newcomer.pk, member.source_id])
    assert refused("UPDATE provenance_datasetversion SET manifest_root = 'x' WHERE id = %s", [v])
    assert refused("UPDATE provenance_datasetversion SET state = 'draft' WHERE id = %s", [v])
    assert refused("DELETE FROM provenance_datasetversion WHERE id = %s", [v])
    assert VersionMember.objects.filter(version=published).count() == published.document_count


def test_the_orm_cannot_change_a_published_version_either(published):
    with pytest.raises(IntegrityError), transaction.atomic():
        published.members.all().delete()
    with pytest.raises(IntegrityError), transaction.atomic():
        published.notes = "rewritten"
        published.save()


def test_a_draft_can_be_changed_and_discarded(make_source, ingest_texts):
    ingest_texts(make_source(license_expression="CC0-1.0"), ["one text", "two text"])
    recipe = datasets.recipe_validate({"intended_use": "commercial"})
    draft = curation.version_create_from_plan(dataset=DatasetFactory(), recipe=recipe,
                                              plan=curation.curation_plan(recipe), actor=None)
    draft.members.first().delete()
    datasets.dataset_version_discard(version=draft, actor=None)
    assert not VersionMember.objects.exists()


def test_the_manifest_root_can_be_recomputed_from_an_export(published, tmp_path, capsys):
    hashes = datasets.version_member_hashes(published)
    assert hashes == sorted(hashes) and len(hashes) == published.document_count
    assert datasets.version_manifest_recompute(published) == published.manifest_root
    export = tmp_path / "manifest.txt"
    export.write_text("\n".join(hashes) + "\n")
    assert merkle_main([str(export), published.manifest_root]) == 0
    assert capsys.readouterr().out.strip() == published.manifest_root
    export.write_text("\n".join(hashes[1:]) + "\n")
    assert merkle_main([str(export), published.manifest_root]) == 1


def test_a_new_version_has_its_parent_and_a_diff_per_source(published, make_source, ingest_texts):
    extra = make_source(license_expression="MIT")
    ingest_texts(extra, ["brand new text one", "brand new text two"])
    removed = published.members.order_by("id").first().document
    document_tombstone(document=removed, actor=None, reason="takedown")
    recipe = datasets.recipe_validate({"intended_use": "commercial"})
    v2 = curation.version_create_from_plan(dataset=published.dataset, recipe=recipe,
                                           plan=curation.curation_plan(recipe), actor=None)
    assert (v2.number, v2.parent_id) == (2, published.pk)
    diff = datasets.version_diff(v2, published)
    assert diff["added"] == {"total": 2, "by_source": {str(extra.pk): 2}}
    assert diff["removed"]["total"] == 1
    assert diff["unchanged"] == published.document_count - 1
    assert v2.manifest_root == manifest_root(datasets.version_member_hashes(v2))
    assert v2.manifest_root != published.manifest_root


def test_the_ledger_refuses_update_and_delete():
    entry = ledger_append(actor=None, event="test.event", payload={"n": 1})
    assert refused("UPDATE provenance_ledgerentry SET event = 'forged' WHERE id = %s", [entry.pk])
    assert refused("DELETE FROM provenance_ledgerentry WHERE id = %s", [entry.pk])
    with pytest.raises(IntegrityError), transaction.atomic():
        LedgerEntry.objects.filter(pk=entry.pk).update(event="forged")


def test_opt_out_history_is_append_only(make_source):
    signal = usage.opt_out_signal_record(source=make_source(), actor=None, kind="ai_txt",
                                         value="User-Agent: *\nDisallow: /")
    assert refused("UPDATE provenance_optoutsignal SET opted_out = false WHERE id = %s",
                   [signal.pk])
    assert OptOutSignal.objects.get(pk=signal.pk).opted_out


def test_every_governance_change_is_chained_and_a_forged_row_is_detected(make_source):
    source = make_source()
    sources.source_update(source=source, actor=None, license_expression="CC-BY-NC-4.0")
    events = list(LedgerEntry.objects.values_list("event", flat=True))
    assert events == ["source.created", "source.updated"]
    assert ledger_verify_chain() == (True, None)
    entries = list(LedgerEntry.objects.order_by("seq"))
    assert all(b.prev_hash == a.entry_hash for a, b in zip(entries, entries[1:], strict=False))
    # Someone with direct database access switches the trigger off and edits a payload.
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE provenance_ledgerentry DISABLE TRIGGER ledger_append_only")
        cursor.execute("UPDATE provenance_ledgerentry SET payload = '{\"license\": \"MIT\"}' "
                       "WHERE seq = %s", [entries[-1].seq])
        cursor.execute("ALTER TABLE provenance_ledgerentry ENABLE TRIGGER ledger_append_only")
    assert ledger_verify_chain() == (False, entries[-1].seq)


def test_a_derived_version_keeps_what_its_parent_left_out(make_source, ingest_texts):
    """A remediated version recorded only its tombstoned documents, and its card said "left
    out: tombstoned 1" while the parent's held-out and licence exclusions were silently gone."""
    ingest_texts(make_source(license_expression="CC0-1.0"), [words(i, 60) for i in range(40)])
    ingest_texts(make_source(license_expression="CC-BY-NC-4.0"), ["not for commercial use"])
    recipe = datasets.recipe_validate({"intended_use": "commercial", "holdout_fraction": 0.2})
    draft = curation.version_create_from_plan(dataset=DatasetFactory(), recipe=recipe,
                                              plan=curation.curation_plan(recipe), actor=None)
    parent = datasets.dataset_version_publish(version=draft, actor=None)
    inherited = dict(parent.exclusions_by_reason)
    assert inherited.get("held_out", 0) > 0 and inherited.get("license", 0) == 1
    gone = parent.members.order_by("document_id").first().document_id
    child = curation.version_derive(parent=parent, detail="takedown TD-1", actor=None,
                                    remove={gone})
    assert child.exclusions_by_reason == {**inherited, "tombstoned": 1}
    assert set(child.exclusions.values_list("document_id", "reason")) == {
        *parent.exclusions.values_list("document_id", "reason"), (gone, "tombstoned")}
    back = curation.version_derive(parent=child, detail="counter notice", actor=None,
                                   restore={gone: child.exclusions.get(document_id=gone)
                                            .source_id})
    assert back.exclusions_by_reason == inherited  # restored: a member again, not left out
    assert back.members.filter(document_id=gone).exists()
