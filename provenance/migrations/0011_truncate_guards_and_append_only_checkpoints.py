"""TRUNCATE passed every guard of 0002 (row triggers do not fire on it, and `TRUNCATE
provenance_ledgerentry CASCADE` emptied the ledger), and the signed checkpoints could be deleted
and re-signed over a rewritten chain. Now:

* every guarded table refuses TRUNCATE (a statement trigger; it also fires on the tables a
  CASCADE reaches);
* the signed checkpoints are append-only, like the ledger.

A role that owns the tables can still disable triggers, so the application connects as a role
that owns nothing (config/app_role.sql).
"""

from django.db import migrations

GUARDED = ["provenance_ledgerentry", "provenance_ledgercheckpoint", "provenance_optoutsignal",
           "provenance_datasetversion", "provenance_versionmember",
           "provenance_versionexclusion"]

FORWARD = r"""
CREATE FUNCTION trailmark_refuse_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'trailmark: TRUNCATE on % is refused: its rows are evidence', TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END $$;
CREATE TRIGGER checkpoint_append_only BEFORE UPDATE OR DELETE ON provenance_ledgercheckpoint
    FOR EACH ROW EXECUTE FUNCTION trailmark_refuse_change();
""" + "\n".join(
    f"CREATE TRIGGER {t.removeprefix('provenance_')}_no_truncate BEFORE TRUNCATE ON {t} "
    f"FOR EACH STATEMENT EXECUTE FUNCTION trailmark_refuse_truncate();" for t in GUARDED)

BACKWARD = "\n".join(
    [f"DROP TRIGGER IF EXISTS {t.removeprefix('provenance_')}_no_truncate ON {t};"
     for t in GUARDED]
    + ["DROP TRIGGER IF EXISTS checkpoint_append_only ON provenance_ledgercheckpoint;",
       "DROP FUNCTION IF EXISTS trailmark_refuse_truncate();"])


class Migration(migrations.Migration):
    dependencies = [("provenance", "0010_document_language")]
    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
