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
for package in ("core", "provenance.services", "attribution.services", "takedowns.services",
                "dashboards.selectors"):
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
# what only some pages or jobs need, loaded when they need it (web workers stay small)
lazy = sorted(m for m in ("scipy", "datasketch", "fpdf", "huggingface_hub", "spdx_python_model",
                          "mlcroissant", "pyarrow") if m in sys.modules)
print("LAZY:" + ",".join(lazy))
"""


def test_the_web_process_never_imports_torch(db):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "HEAVY:\n" in out.stdout, out.stdout
    assert "LAZY:\n" in out.stdout, out.stdout


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


def test_importing_the_settings_writes_nothing_and_the_launcher_prepares_the_state(tmp_path):
    """The local settings made the secret key file and the static folder when imported."""
    from config.embedded import prepare_state

    state = tmp_path / "state"
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SECRET_KEY"}
    env["TRAILMARK_STATE_DIR"] = str(state)

    def load(module: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", f"import {module} as s; print(s.SECRET_KEY)"],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)

    assert load("config.settings.test").returncode == 0
    refused = load("config.settings.local")
    assert refused.returncode != 0 and "no secret key: set DJANGO_SECRET_KEY" in refused.stderr
    assert not state.exists()  # nothing written by either import
    prepare_state(state)
    key = (state / "secret_key").read_text()
    assert (state / "secret_key").stat().st_mode & 0o777 == 0o600 and (state / "static").is_dir()
    assert load("config.settings.local").stdout.strip() == key
    prepare_state(state)
    assert (state / "secret_key").read_text() == key  # made once, kept
