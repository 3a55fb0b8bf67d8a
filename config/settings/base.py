"""Settings shared by every environment. Every knob is an environment variable (see README)."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent
STATE_DIR = Path(os.environ.get("TRAILMARK_STATE_DIR", BASE_DIR / "var")).resolve()
ARTIFACT_DIR = Path(os.environ.get("TRAILMARK_ARTIFACT_DIR", STATE_DIR / "artifacts")).resolve()


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    return default if value is None else value.strip().lower() in {"1", "true", "yes", "on"}


def served_url() -> str:
    host = os.environ.get("TRAILMARK_HOST", "127.0.0.1")
    host = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host  # every address: name one
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{os.environ.get('TRAILMARK_PORT', '8000')}/"


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def state_secret_key() -> str:
    """The per-installation key kept in the state folder, so sessions survive restarts. The
    launcher (config.embedded) makes it at start-up; settings only read it: importing settings
    writes nothing."""
    path = STATE_DIR / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        raise ImproperlyConfigured(
            f"no secret key: set DJANGO_SECRET_KEY, or start through `make run` (python -m "
            f"config.embedded), which makes {path}") from None


# Each environment's settings say where the key comes from (local: the state folder's; production:
# DJANGO_SECRET_KEY, required).
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
DEBUG = env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "core",
    "provenance",
    "attribution",
    "takedowns",
    "retrieval",
    "benchmarks",
    "dashboards",
    "demo",
]

MIDDLEWARE = [
    "config.middleware.BodyLimit",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "config.middleware.DatabaseUnavailable",
]

# Security headers on every response. Scripts and styles come from our own static files only
# (no inline code, no CDN), so the policy can be strict.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", "postgresql://postgres@localhost:5432/trailmark"),
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}


def _cache_location(broker: str) -> str:
    # Kombu spells a Unix socket `redis+socket://PATH`; redis-py spells it `unix://PATH`.
    return "unix://" + broker.removeprefix("redis+socket://") \
        if broker.startswith("redis+socket://") else broker


# The cache holds the request-rate counters, shared by every web process through Redis.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": _cache_location(os.environ.get("TRAILMARK_CACHE_URL") or os.environ.get(
            "CELERY_BROKER_URL", "redis://localhost:6379/0")),
        "KEY_PREFIX": "trailmark",
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "provenance.User"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = STATE_DIR / "static"
# Made at start-up by the launcher (and by collectstatic), not here: WhiteNoise warns without it.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"

# Uploads larger than this go to disk while they stream in; ingest never holds a file in memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "knox.auth.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["core.permissions.CapabilityPermission"],
    "DEFAULT_PARSER_CLASSES": [
        "provenance.parsers.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "core.pagination.Pages",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "core.pagination.Ordering",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.api.exception_handler",
    # Requests per client: anonymous by address, signed-in by user; "auth" is the password
    # endpoints (the API token and the sign-in page), per address.
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
        "rest_framework.throttling.ScopedRateThrottle",
    ],
    # Clients are told apart by REMOTE_ADDR, or by X-Forwarded-For behind this many proxies.
    "NUM_PROXIES": int(os.environ.get("TRAILMARK_NUM_PROXIES", "0")),
    "DEFAULT_THROTTLE_RATES": {
        "anon": os.environ.get("TRAILMARK_THROTTLE_ANON", "300/min"),
        "user": os.environ.get("TRAILMARK_THROTTLE_USER", "3000/min"),
        "auth": os.environ.get("TRAILMARK_THROTTLE_AUTH", "10/min"),
    },
}
# API tokens (knox): only a SHA-512 digest is stored; a token lasts TRAILMARK_API_TOKEN_HOURS
# from its last use (each use renews it), never more than TRAILMARK_API_TOKEN_MAX_DAYS from its
# creation; POST /api/v1/auth/logout/ revokes it, /api/v1/auth/logout-all/ every one of its user.
REST_KNOX = {
    "TOKEN_TTL": timedelta(hours=int(os.environ.get("TRAILMARK_API_TOKEN_HOURS", "24"))),
    "AUTO_REFRESH": True,
    "AUTO_REFRESH_MAX_TTL": timedelta(days=int(os.environ.get("TRAILMARK_API_TOKEN_MAX_DAYS",
                                                              "30"))),
    "TOKEN_LIMIT_PER_USER": 20,
    "AUTH_HEADER_PREFIX": "Token",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Trailmark API",
    "DESCRIPTION": "Provenance, attribution and takedowns for the data behind language models.",
    "VERSION": "1",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums",
                             "core.api.document_errors"],
    "ENUM_NAME_OVERRIDES": {
        "JobStateEnum": "provenance.models.Job.State",
        "VersionStateEnum": "provenance.models.DatasetVersion.State",
        "RightsHolderKindEnum": "provenance.models.RightsHolder.Kind",
        "OptOutKindEnum": "provenance.models.OptOutSignal.Kind",
        "UsagePrefEnum": "provenance.models.OptOutSignal.Pref",
    },
}

# Celery: routing by task name.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "redis://localhost:6379/0")
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "attribution.*": {"queue": "gpu"},
    "takedowns.unlearn_*": {"queue": "gpu"},
    "provenance.train_*": {"queue": "gpu"},
    "provenance.canary_*": {"queue": "gpu"},
    "provenance.synthesize_*": {"queue": "gpu"},
    "retrieval.answer": {"queue": "gpu"},
    "benchmarks.trial": {"queue": "gpu"},
}
# Status lives on *Job / *Run rows; the result backend only counts the parts of a chord (a
# gradient index built shard by shard), so results are ignored unless a task asks otherwise.
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", CELERY_BROKER_URL)
CELERY_RESULT_EXPIRES = 7 * 24 * 60 * 60
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A broker restart should delay a task, not lose it: publishing retries for about 20 s.
CELERY_TASK_PUBLISH_RETRY = True
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 10, "interval_start": 0.5,
                                    "interval_step": 0.5, "interval_max": 3}
# A task acked late is redelivered if its worker dies; redeliver after this long unacked.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 2 * 60 * 60}
CELERY_BEAT_SCHEDULE = {
    # Overdue takedowns stand out on the staff pages, and staff hear of each once.
    "takedown-deadlines": {"task": "takedowns.check_deadlines", "schedule": 15 * 60},
    # The ledger's tail is signed every minute, so that every entry is soon covered.
    "ledger-checkpoint": {"task": "provenance.ledger_checkpoint", "schedule": 60},
    # A job whose worker died is resumed within half a minute (core.jobs).
    "jobs-recover": {"task": "provenance.jobs_recover", "schedule": 30},
}
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]

# Trailmark
TRAILMARK: dict[str, Any] = {
    "INGEST_BATCH_SIZE": int(os.environ.get("TRAILMARK_INGEST_BATCH_SIZE", "1000")),
    "INGEST_MAX_DOC_BYTES": int(os.environ.get("TRAILMARK_INGEST_MAX_DOC_BYTES", str(1 << 20))),
    # A batch is also cut at this many characters of text (long documents make smaller batches).
    "INGEST_BATCH_CHARS": int(os.environ.get("TRAILMARK_INGEST_BATCH_CHARS", str(1 << 23))),
    # Processes preparing batches (normalise, hash, MinHash) for an input of at least
    # INGEST_PROCESSES_FROM_BYTES; 0 = one per CPU, 1 = none.
    "INGEST_PROCESSES": int(os.environ.get("TRAILMARK_INGEST_PROCESSES", "0")),
    "INGEST_PROCESSES_FROM_BYTES": int(os.environ.get("TRAILMARK_INGEST_PROCESSES_FROM_BYTES",
                                                      str(32 << 20))),
    # A queued ingest of an input of at least twice INGEST_SHARD_BYTES is cut into shards of
    # about that size (at most INGEST_SHARDS_MAX), one task each, that every worker shares.
    "INGEST_SHARD_BYTES": int(os.environ.get("TRAILMARK_INGEST_SHARD_BYTES", str(32 << 20))),
    "INGEST_SHARDS_MAX": int(os.environ.get("TRAILMARK_INGEST_SHARDS_MAX", "64")),
    "UPLOAD_MAX_BYTES": int(os.environ.get("TRAILMARK_UPLOAD_MAX_BYTES", str(2 << 30))),
    # Folders on the server from which staff may ingest by path (comma-separated).
    "IMPORT_DIRS": [Path(p).resolve() for p in env_list("TRAILMARK_IMPORT_DIRS")],
    # Documents per gradient-index shard: one chord task each, spread over the gpu workers.
    "ATTRIBUTION_SHARD_DOCUMENTS": int(os.environ.get("TRAILMARK_ATTRIBUTION_SHARD_DOCUMENTS",
                                                      "20000")),
    # Documents embedded per background task (sentence embeddings, default queue).
    "EMBED_BATCH": int(os.environ.get("TRAILMARK_EMBED_BATCH", "512")),
    # How a CPU embeds: "int8" (ONNX Runtime, built and checked against fp32 once per host;
    # fp32 if the check fails) or "fp32" (torch). A GPU always runs fp32.
    "EMBED_BACKEND": os.environ.get("TRAILMARK_EMBED_BACKEND", "int8"),
    # Seconds a retrieval request waits for a worker to embed its query (the web process never
    # imports torch); past it, the answer comes from keywords alone and says so.
    "RETRIEVAL_EMBED_WAIT": float(os.environ.get("TRAILMARK_RETRIEVAL_EMBED_WAIT", "3")),
    # The keyword leg's weight in the fused ranking (the vector leg's is 1). bench/rag_eval.py
    # sweeps it: its synthetic tuning questions choose 8, not shipped (docs/retrieval.md).
    "RETRIEVAL_KEYWORD_WEIGHT": float(os.environ.get("TRAILMARK_RETRIEVAL_KEYWORD_WEIGHT", "1")),
    # Where artifacts are shared between hosts: "" (the artifact folder itself) or
    # s3://bucket/prefix (the folder then caches it; boto3 reads AWS_ENDPOINT_URL and the keys).
    "ARTIFACT_STORE": os.environ.get("TRAILMARK_ARTIFACT_STORE", ""),
    # A job still queued this long after it was last touched is sent to the broker again (its
    # message may have been lost); a duplicate delivery does nothing.
    "JOB_RESEND_QUEUED_AFTER": int(os.environ.get("TRAILMARK_JOB_RESEND_QUEUED_AFTER", "900")),
    # What bench/attribution_eval.py measured: the figures every attribution report quotes for
    # the influence configuration it used.
    "ATTRIBUTION_EVALUATION": Path(os.environ.get(
        "TRAILMARK_ATTRIBUTION_EVALUATION",
        str(BASE_DIR / "bench" / "results" / "attribution_eval.json"))),
    # Takedowns: the holiday calendar of business-day deadlines (a `holidays` country code),
    # and the internal service levels in business days from receipt (per legal basis, or the
    # "decide" default); the law's own limits (GDPR's month) apply on top.
    "TAKEDOWN_HOLIDAYS": os.environ.get("TRAILMARK_TAKEDOWN_HOLIDAYS", "US"),
    "TAKEDOWN_SERVICE_LEVELS": {"acknowledge": 2, "decide": 10, "dsa_16": 7, "cdsm_4": 20,
                                "licence_revocation": 20, "voluntary": 30},
    # Cards and the public pages: where this installation is reachable, and who publishes.
    # Default: the address `make run` serves on (TRAILMARK_HOST and TRAILMARK_PORT, which the
    # launcher passes on), so that cards published there name it.
    "PUBLIC_URL": os.environ.get("TRAILMARK_PUBLIC_URL") or served_url(),
    "PUBLISHER": os.environ.get("TRAILMARK_PUBLISHER", "Trailmark demo workspace"),
    # Requests one rights-holder may file per period ("N/hour", "N/day" or "N/week").
    "TAKEDOWN_QUOTA": os.environ.get("TRAILMARK_TAKEDOWN_QUOTA", "50/day"),
    "TAKEDOWN_FROM_EMAIL": os.environ.get("TRAILMARK_TAKEDOWN_FROM_EMAIL",
                                          "takedowns@trailmark.invalid"),
    # When a remediated model passes verification: overrides of
    # takedowns.engine.unlearn_config.Thresholds (privleak, min_documents, canary_p, ...).
    # The transparency log: the checkpoints' origin line (and signing key name), and the
    # Ed25519 signing key (base64 32-byte seed, or a file holding one; default: one made in the
    # state folder on first use).
    "LEDGER_ORIGIN": os.environ.get("TRAILMARK_LEDGER_ORIGIN", "trailmark.invalid/ledger"),
    "LEDGER_KEY": os.environ.get("TRAILMARK_LEDGER_KEY", ""),
    "LEDGER_KEY_FILE": os.environ.get("TRAILMARK_LEDGER_KEY_FILE", ""),
    # The latest signed checkpoint is also kept outside the database (default: in the state
    # folder), so that checkpoints deleted from it are noticed; and an entry must be covered by
    # a signed checkpoint within this many seconds (the worker signs one every minute).
    "LEDGER_WITNESS_FILE": os.environ.get("TRAILMARK_LEDGER_WITNESS_FILE", ""),
    "LEDGER_CHECKPOINT_GRACE": int(os.environ.get("TRAILMARK_LEDGER_CHECKPOINT_GRACE", "900")),
    "TAKEDOWN_VERIFICATION": json.loads(os.environ.get("TRAILMARK_TAKEDOWN_VERIFICATION",
                                                       "{}")),
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("TRAILMARK_LOG_LEVEL", "INFO")},
}
