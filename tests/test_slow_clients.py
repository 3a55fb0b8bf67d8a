"""The web server as `make run` starts it, against clients that are slow on purpose: sockets that
trickle their headers, uploads that trickle a declared 3 GB body, a JSON body that stalls. The
outside probe stopped the whole site with two such clients (two sync workers, no proxy)."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request

import pytest

from config.embedded import ROOT, web_command

GRACE = 2  # seconds for the headers (the default is 10), 3 for a body (default 20)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def server():
    port = _free_port()
    env = {**os.environ, "TRAILMARK_WEB_HEADER_GRACE": str(GRACE),
           "TRAILMARK_WEB_BODY_GRACE": str(GRACE + 1), "TRAILMARK_THROTTLE_ANON": "10000/min"}
    web = subprocess.Popen(web_command("127.0.0.1", port), env=env, cwd=ROOT,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(120):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/", timeout=2):
                    break
            except OSError:
                time.sleep(0.5)
        else:
            raise AssertionError("the web server did not start")
        yield port
    finally:
        web.terminate()
        try:
            web.wait(30)
        except subprocess.TimeoutExpired:
            web.kill()
            web.wait()


def _open(port: int, first: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(first)
    return sock


def _answer(sock: socket.socket) -> bytes:
    """What the server sent before it closed the connection (b"" when it just closed it)."""
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except (ConnectionResetError, TimeoutError):
        pass
    return b"".join(chunks)


def test_slow_clients_neither_stop_the_site_nor_hold_it_for_long(server):
    port = server
    # More tricklers than the workers had processes, each sending a byte a second.
    headers = [_open(port, b"GET /transparency/ HTTP/1.1\r\nHost: 127.0.0.1\r\n")
               for _ in range(6)]
    uploads = [_open(port, b"POST /api/v1/ingest-jobs/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                           b"Content-Type: multipart/form-data; boundary=x\r\n"
                           b"Content-Length: 3221225472\r\n\r\n--x\r\n") for _ in range(2)]
    stalled = _open(port, b"POST /api/v1/auth/token/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                          b"Content-Type: application/json\r\nContent-Length: 4000\r\n\r\n{")
    began = time.monotonic()
    answered = []
    for _ in range(3):  # the site answers everyone else meanwhile
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/", timeout=5) as page:
            answered.append(page.status)
        for sock in headers:
            try:
                sock.sendall(b"X")
            except OSError:
                pass
        time.sleep(1)
    assert answered == [200, 200, 200]
    for sock in uploads:  # refused on the declared length, nothing read
        assert _answer(sock).startswith(b"HTTP/1.1 413"), "a 3 GB body was not refused"
    assert _answer(stalled).startswith(b"HTTP/1.1 400")  # the body stopped arriving
    for sock in headers:  # cut off at the header deadline, with no request served
        assert _answer(sock) == b""
    assert time.monotonic() - began < 30  # cut off, not left to hang (the read timeout is 30)
