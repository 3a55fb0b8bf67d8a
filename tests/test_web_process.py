"""The web process never imports torch: ML code runs only in workers."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = """
import sys, django
django.setup()
from django.test import Client
from django.urls import get_resolver
get_resolver().url_patterns  # import every view module
import config.wsgi  # noqa: F401
for path in ["/", "/api/v1/versions/", "/api/v1/training-runs/", "/api/v1/outputs/",
             "/api/schema/"]:
    assert Client().get(path).status_code < 500, path
heavy = sorted(m for m in ("torch", "transformers", "tokenizers") if m in sys.modules)
print("HEAVY:" + ",".join(heavy))
"""


def test_the_web_process_never_imports_torch(db):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "HEAVY:\n" in out.stdout, out.stdout
