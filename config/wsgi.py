import os

from django.core.wsgi import get_wsgi_application

# Production unless told otherwise (a server must not start with DEBUG on by accident); `make
# run` and `make test` name their settings module.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")
application = get_wsgi_application()
