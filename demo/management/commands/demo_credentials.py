"""manage.py demo_credentials --url URL: say where the app is and how to log in."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand

from demo.management.commands.demo_load import credentials_path


class Command(BaseCommand):
    help = "Print the URL and the demo logins."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("--url", default="http://127.0.0.1:8000/")

    def handle(self, *args, **opts):  # type: ignore[no-untyped-def]
        url = opts["url"]
        lines = ["", f"Trailmark is running at {url}", f"  API docs: {url}api/docs/",
                 f"  Admin:    {url}admin/"]
        path = credentials_path()
        if path.exists():
            creds = json.loads(path.read_text())
            names = ", ".join(f"{u['username']} ({u['role']})" for u in creds["users"])
            lines += [f"  Log in as admin / {creds['password']}",
                      f"  Other demo users, same password: {names}"]
        else:
            lines.append("  No demo credentials here: create a user with "
                         "`python manage.py createsuperuser`.")
        lines.append("Press Ctrl-C to stop.\n")
        self.stdout.write("\n".join(lines))
