"""The test suite: same services as `make run` (embedded by default), faster hashing."""

from .base import *  # noqa: F401,F403
from .base import SECRET_KEY, TRAILMARK

# The suite's processes share one key (a test never runs on a deployment's data).
SECRET_KEY = SECRET_KEY or "trailmark-tests-only-" + "x" * 40

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
TRAILMARK["INGEST_BATCH_SIZE"] = 50
TRAILMARK["INGEST_MAX_DOC_BYTES"] = 64 * 1024
TRAILMARK["ATTRIBUTION_SHARD_DOCUMENTS"] = 25
TRAILMARK["EMBED_BATCH"] = 64
# Retrieval answers from keywords alone unless a test starts a worker to embed its queries (and
# says how long to wait for it): the matrices and the fuzzer call search without one.
TRAILMARK["RETRIEVAL_EMBED_WAIT"] = 0
# Rate counters per test process, emptied before each test (tests/conftest.py); the shared
# Redis cache of the other settings would carry counts from one test into the next.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
