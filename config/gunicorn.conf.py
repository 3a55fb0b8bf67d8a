"""gunicorn's settings, for `make run` and deployments alike:

    gunicorn -c config/gunicorn.conf.py config.wsgi

Threaded workers whose reads have deadlines (config.gunicorn_worker): a slow client holds one
thread for seconds, not a worker for ever. A deployment still puts a buffering proxy in front
(docs/deploy.md); these settings are what keeps a server that faces clients itself up.
"""

import os

worker_class = "config.gunicorn_worker.DeadlineThreadWorker"
workers = int(os.environ.get("TRAILMARK_WEB_WORKERS", "2"))
threads = int(os.environ.get("TRAILMARK_WEB_THREADS", "8"))
timeout = 120           # a worker silent this long is restarted
graceful_timeout = 30
keepalive = 5
worker_connections = 1000  # connections a worker holds, most of them idle or kept alive
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190
accesslog = "-"
