"""Rules the database itself enforces, so no code path (ORM, raw SQL, admin, a bug) can break them:

* the ledger and the opt-out signal history are append-only: UPDATE and DELETE are refused;
* a published dataset version is immutable: the version row cannot change or be deleted, and its
  members and exclusions cannot be inserted, changed or deleted.

Member checks are statement-level triggers with transition tables: one check per statement, not
per row, so building a draft of 10^6 members costs one lookup.
"""

from django.db import migrations

FORWARD = r"""
CREATE FUNCTION trailmark_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'trailmark: % on % is refused: the table is append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END $$;

CREATE TRIGGER ledger_append_only BEFORE UPDATE OR DELETE ON provenance_ledgerentry
    FOR EACH ROW EXECUTE FUNCTION trailmark_refuse_change();
CREATE TRIGGER opt_out_append_only BEFORE UPDATE OR DELETE ON provenance_optoutsignal
    FOR EACH ROW EXECUTE FUNCTION trailmark_refuse_change();

CREATE FUNCTION trailmark_version_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.state = 'published' THEN
        RAISE EXCEPTION 'trailmark: dataset version % is published and immutable (% refused)',
            OLD.id, TG_OP USING ERRCODE = 'restrict_violation';
    END IF;
    IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER version_immutable BEFORE UPDATE OR DELETE ON provenance_datasetversion
    FOR EACH ROW EXECUTE FUNCTION trailmark_version_guard();

CREATE FUNCTION trailmark_version_rows_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    hit bigint;
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        SELECT v.id INTO hit FROM new_rows r JOIN provenance_datasetversion v ON v.id = r.version_id
            WHERE v.state = 'published' LIMIT 1;
    END IF;
    IF hit IS NULL AND TG_OP IN ('UPDATE', 'DELETE') THEN
        SELECT v.id INTO hit FROM old_rows r JOIN provenance_datasetversion v ON v.id = r.version_id
            WHERE v.state = 'published' LIMIT 1;
    END IF;
    IF hit IS NOT NULL THEN
        RAISE EXCEPTION 'trailmark: dataset version % is published and immutable (% on % refused)',
            hit, TG_OP, TG_TABLE_NAME USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NULL;
END $$;
"""

ROW_TABLES = ["provenance_versionmember", "provenance_versionexclusion"]


def _row_guards() -> str:
    sql = []
    for table in ROW_TABLES:
        short = table.removeprefix("provenance_")
        sql.append(f"""
CREATE TRIGGER {short}_guard_insert AFTER INSERT ON {table}
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION trailmark_version_rows_guard();
CREATE TRIGGER {short}_guard_update AFTER UPDATE ON {table}
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION trailmark_version_rows_guard();
CREATE TRIGGER {short}_guard_delete AFTER DELETE ON {table}
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
    EXECUTE FUNCTION trailmark_version_rows_guard();""")
    return "\n".join(sql)


BACKWARD = "\n".join(
    [f"DROP TRIGGER IF EXISTS {t.removeprefix('provenance_')}_guard_{op} ON {t};"
     for t in ROW_TABLES for op in ("insert", "update", "delete")]
    + [
        "DROP TRIGGER IF EXISTS version_immutable ON provenance_datasetversion;",
        "DROP TRIGGER IF EXISTS opt_out_append_only ON provenance_optoutsignal;",
        "DROP TRIGGER IF EXISTS ledger_append_only ON provenance_ledgerentry;",
        "DROP FUNCTION IF EXISTS trailmark_version_rows_guard();",
        "DROP FUNCTION IF EXISTS trailmark_version_guard();",
        "DROP FUNCTION IF EXISTS trailmark_refuse_change();",
    ]
)


class Migration(migrations.Migration):
    dependencies = [("provenance", "0001_initial")]
    operations = [migrations.RunSQL(FORWARD + _row_guards(), BACKWARD)]
