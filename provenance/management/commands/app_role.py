"""manage.py app_role [--role NAME]: as the tables' owner, after `migrate`, create the role the
web and worker processes connect as and grant it the rows of every table and nothing more
(config/db_roles.py, docs/deploy.md)."""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django.db import connection

from config.db_roles import APP_ROLE, app_role_sql


class Command(BaseCommand):
    help = "Create or refresh the application's database role (run as the owner, after migrate)."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("--role", default=APP_ROLE)

    def handle(self, *args, **opts):  # type: ignore[no-untyped-def]
        with connection.cursor() as cursor:
            cursor.execute(app_role_sql(connection.settings_dict["NAME"], opts["role"]))
        self.stdout.write(f"role {opts['role']}: rows of every table granted; set its password "
                          "and point DATABASE_URL at it for the web and worker processes")
