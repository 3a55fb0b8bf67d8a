"""The launcher's supervisor (config.embedded.Supervisor): a child that dies is started again
and what it left behind is killed; one that keeps dying ends the run. No services needed."""

from __future__ import annotations

import os
import signal
import sys
import time

import psutil

from config.embedded import Supervisor

# A stand-in for the worker: a main process with a child of its own (its "pool" or "beat").
PARENT = ("import subprocess, sys, time; "
          "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)']); "
          "time.sleep(300)")


def _grandchildren(pid: int) -> list[psutil.Process]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = psutil.Process(pid).children()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError("the child never started its own")


def test_a_dead_child_is_started_again_and_what_it_left_is_killed():
    supervisor = Supervisor({"worker": [sys.executable, "-c", PARENT]}, dict(os.environ))
    try:
        first = supervisor.children["worker"]
        [orphan] = _grandchildren(first.pid)
        os.kill(first.pid, signal.SIGKILL)  # the worker's main process, as the probe did
        first.wait(10)
        assert supervisor.check() is True
        second = supervisor.children["worker"]
        assert second.pid != first.pid and second.poll() is None
        orphan.wait(10)  # killed with its dead parent's group, not left running
        assert not orphan.is_running() or orphan.status() == psutil.STATUS_ZOMBIE
    finally:
        supervisor.stop()
    assert supervisor.children["worker"].poll() is not None


def test_a_child_that_keeps_dying_ends_the_run(monkeypatch):
    monkeypatch.setattr(Supervisor, "MAX_RESTARTS", 2)
    monkeypatch.setattr(time, "sleep", lambda seconds: None)  # no pauses between restarts
    supervisor = Supervisor({"web server": [sys.executable, "-c", "raise SystemExit(3)"]},
                            dict(os.environ))
    try:
        results = []
        for _ in range(3):
            supervisor.children["web server"].wait(10)
            results.append(supervisor.check())
        assert results == [True, True, False]
    finally:
        supervisor.stop()


def test_exec_finds_the_services_of_a_run_in_the_same_state_folder(tmp_path):
    """`make run` announces its services in the state folder while it is up; a command run
    beside it uses them instead of starting a second PostgreSQL and Redis on the same data."""
    from config.embedded import announced, running_services

    assert running_services(tmp_path) is None
    urls = {"DATABASE_URL": "postgresql://trailmark_app:@/trailmark?host=/x",
            "CELERY_BROKER_URL": "redis+socket:///x/redis.sock"}
    with announced(tmp_path, urls):
        assert running_services(tmp_path) == urls
    assert running_services(tmp_path) is None  # gone when the run stops
    (tmp_path / "services.json").write_text(
        '{"pid": 999999999, "DATABASE_URL": "postgresql://x"}')  # a run that died
    assert running_services(tmp_path) is None
