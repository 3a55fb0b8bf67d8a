"""The database role the application runs as, apart from the role that owns the tables.

The guards that make the ledger, the opt-out history and published versions unchangeable are
triggers (provenance/migrations/0002 and 0011). A superuser can switch triggers off, and so can
a table's owner (`ALTER TABLE ... DISABLE TRIGGER`); TRUNCATE needs its own privilege. So the
web and worker processes connect as a role that is no superuser, owns nothing and holds only
SELECT, INSERT, UPDATE and DELETE, while migrations run as the owner. `make run` does this with
the embedded PostgreSQL; a deployment runs `app_role_sql()` as the owner after each migration
(docs/deploy.md). Imports no Django: the launcher uses it before settings exist.
"""

from __future__ import annotations

APP_ROLE = "trailmark_app"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def app_role_sql(database: str, role: str = APP_ROLE, schema: str = "public") -> str:
    """SQL, run by the tables' owner, that creates `role` when missing and grants it the rows of
    every table (now, and those later migrations create) and nothing more."""
    r, d, s = _ident(role), _ident(database), _ident(schema)
    literal = "'" + role.replace("'", "''") + "'"
    return f"""
DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {literal}) THEN
        CREATE ROLE {r} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
    END IF;
END $$;
GRANT CONNECT, TEMPORARY ON DATABASE {d} TO {r};
GRANT USAGE ON SCHEMA {s} TO {r};
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {s} TO {r};
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA {s} TO {r};
REVOKE TRUNCATE, REFERENCES, TRIGGER ON ALL TABLES IN SCHEMA {s} FROM {r};
ALTER DEFAULT PRIVILEGES IN SCHEMA {s} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {r};
ALTER DEFAULT PRIVILEGES IN SCHEMA {s} GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {r};
"""
