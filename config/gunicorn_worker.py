"""gunicorn's threaded worker with request read deadlines, so that slow clients cannot hold the
site: without them two sockets trickling headers, or two uploads trickling a body, kept both
sync workers busy for as long as they liked.

A thread that reads a request gets a deadline that grows with what arrives, as Apache's
mod_reqtimeout does: `grace` seconds plus one second per `min_rate` bytes, at most `cap`
seconds, for the headers and again for the body. A client slower than that is cut off (the
read raises `socket.timeout`; gunicorn closes the connection), and the thread serves others.
Clients that send nothing at all never take a thread (gthread waits for their first byte in its
poller). A body over its limit is refused on its Content-Length before it is read
(config.middleware.BodyLimitMiddleware). This is the defence of a server that faces clients
itself; production still belongs behind a buffering proxy (docs/deploy.md).
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

from gunicorn.workers.gthread import ThreadWorker

# (grace seconds, bytes per second, cap seconds): the headers of any browser arrive in one
# packet; a body as slow as 1 KiB/s still passes, a trickle of a byte a second does not.
HEADER = (float(os.environ.get("TRAILMARK_WEB_HEADER_GRACE", "10")), 1024, 30.0)
BODY = (float(os.environ.get("TRAILMARK_WEB_BODY_GRACE", "20")), 1024, 6 * 60 * 60.0)


class DeadlineSocket:
    """A client socket whose reads share one deadline per phase (header, then body)."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.start(HEADER)

    def start(self, phase: tuple[float, int, float]) -> None:
        self._grace, self._rate, self._cap = phase
        self._began = time.monotonic()
        self._received = 0

    def _remaining(self) -> float:
        allowed = min(self._cap, self._grace + self._received / self._rate)
        return self._began + allowed - time.monotonic()

    def recv(self, size: int, *flags: int) -> bytes:
        remaining = self._remaining()
        if remaining <= 0:
            raise TimeoutError("the client sent its request too slowly")
        self._sock.settimeout(remaining)
        try:
            data = self._sock.recv(size, *flags)
        finally:
            self._sock.settimeout(None)
        self._received += len(data)
        return data

    def setblocking(self, flag: bool) -> None:
        self._sock.setblocking(flag)

    def __getattr__(self, name: str) -> Any:  # fileno, sendall, close, shutdown...
        return getattr(self._sock, name)


class DeadlineThreadWorker(ThreadWorker):
    def handle(self, conn: Any) -> Any:
        if not isinstance(conn.sock, DeadlineSocket):
            conn.sock = DeadlineSocket(conn.sock)
        conn.sock.start(HEADER)  # also for the next request on a kept-alive connection
        return super().handle(conn)

    def handle_request(self, req: Any, conn: Any) -> Any:
        conn.sock.start(BODY)
        return super().handle_request(req, conn)
