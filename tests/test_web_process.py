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
import importlib, pkgutil
# every service and selector module: the web process imports them (views call services), so
# none may import torch at module level
for package in ("provenance.services", "attribution.services", "takedowns.services"):
    for module in pkgutil.iter_modules(importlib.import_module(package).__path__):
        importlib.import_module(f"{package}.{module.name}")
for name in ("provenance.selectors", "attribution.selectors", "takedowns.selectors",
             "dashboards.selectors", "dashboards.services", "provenance.ledger.proofs"):
    importlib.import_module(name)
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


def test_the_server_entry_points_default_to_production_settings():
    """A server started without DJANGO_SETTINGS_MODULE runs the production settings (DEBUG off,
    every secret from the environment), never the local ones."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    for module in ("config.wsgi", "config.asgi"):
        missing = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=ROOT,
                                 env={k: v for k, v in env.items() if k != "DJANGO_SECRET_KEY"},
                                 capture_output=True, text=True, timeout=120)
        assert missing.returncode != 0 and "DJANGO_SECRET_KEY" in missing.stderr, module
        started = subprocess.run(
            [sys.executable, "-c", f"import {module}; from django.conf import settings; "
             "print(settings.SETTINGS_MODULE, settings.DEBUG)"], cwd=ROOT,
            env={**env, "DJANGO_SECRET_KEY": "x" * 50}, capture_output=True, text=True,
            timeout=120)
        assert started.stdout.split() == ["config.settings.production", "False"], (
            started.stderr[-2000:])
