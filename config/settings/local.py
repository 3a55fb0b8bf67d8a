"""Development on one machine: `make run`."""

from .base import *  # noqa: F401,F403
from .base import SECRET_KEY, env_bool, state_secret_key

SECRET_KEY = SECRET_KEY or state_secret_key()

# Off unless asked for: `make run` serves the demo to anyone who can reach it, and Django's
# technical 404 and 500 pages show settings, paths and code.
DEBUG = env_bool("DJANGO_DEBUG", False)
EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
