"""Load: concurrent users over the main pages and API on loopback, against the real stack.

    python bench/load.py                          # 20 users for 600 s (issue 7's figure)
    python bench/load.py --users 5 --duration 30  # a quick look
    python bench/load.py --url http://127.0.0.1:8000/ --state var   # a `make run` already up

Without --url it starts `python -m config.embedded run` (embedded PostgreSQL + pgvector, Redis,
a Celery worker, gunicorn with TRAILMARK_WEB_WORKERS, the demo data) in a fresh state folder.
All clients come from one address, so that server runs with the per-address rate limits raised;
against a server of yours, 429 answers are counted apart from errors.

Each user is a thread with its own session, in a closed loop with 0.2-1.0 s of think time:
anonymous visitors read the public pages and the log; rights-holders sign in, read their
takedowns and sources and now and then file a request; curators read the staff pages and job
lists; auditors read the ledger, attribution runs and log proofs. Prints p50/p95/p99 per
endpoint and overall, errors, throughput, and each endpoint's p95 over /health/'s (a request that
does no work, measured in the same run: the baseline); writes bench/results/load.json.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from config.embedded import start_in_background, stop_background  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "load.json"
# Every client of a benchmark is 127.0.0.1: the per-address limits are lifted.
UNTHROTTLED = {"TRAILMARK_THROTTLE_ANON": "1000000/min", "TRAILMARK_THROTTLE_AUTH": "100000/min",
               "TRAILMARK_THROTTLE_USER": "1000000/min", "TRAILMARK_TAKEDOWN_QUOTA": "1000000/day"}


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    throttled: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, name: str, seconds: float, status: int, detail: str = "") -> None:
        with self.lock:
            self.latencies[name].append(seconds)
            if status == 429:
                self.throttled += 1
            elif status >= 400 or status == 0:
                self.errors[name].append(f"{status} {detail}"[:200])


class User:
    """One browser-like client: a cookie jar, CSRF handling, timed requests."""

    def __init__(self, base: str, tally: Tally) -> None:
        self.base = base
        self.tally = tally
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def _csrf(self) -> str:
        return next((c.value or "" for c in self.jar if c.name == "csrftoken"), "")

    def call(self, name: str, path: str, data: dict | None = None, form: bool = False) -> str:
        headers = {"Accept": "application/json" if path.startswith("api/") else "text/html"}
        body = None
        if data is not None:
            if form:
                body = urllib.parse.urlencode(data).encode()
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            else:
                body = json.dumps(data).encode()
                headers["Content-Type"] = "application/json"
            headers["X-CSRFToken"] = self._csrf()
            headers["Referer"] = self.base
        request = urllib.request.Request(self.base + path, data=body, headers=headers)
        started = time.perf_counter()
        try:
            with self.opener.open(request, timeout=60) as response:
                text = response.read().decode("utf-8", "replace")
                status = response.status
        except urllib.error.HTTPError as exc:
            text, status = exc.read().decode("utf-8", "replace"), exc.code
        except OSError as exc:
            text, status = str(exc), 0
        self.tally.add(name, time.perf_counter() - started, status, text[:120])
        return text

    def sign_in(self, username: str, password: str) -> None:
        self.call("sign-in page", "accounts/login/")
        self.call("sign in", "accounts/login/", {
            "username": username, "password": password, "next": "/",
            "csrfmiddlewaretoken": self._csrf()}, form=True)


NOTICE = {"legal_basis": "voluntary", "claimant_name": "Load Test", "claimant_email":
          "load@demo.invalid", "works": [{"title": "A work", "urls": ["https://demo.invalid/w"]}]}


def actions(role: str, user: User, rng: random.Random) -> list:
    """What a user of each role does; each action is one request."""
    def log_proof() -> None:
        size = json.loads(user.call("log checkpoint", "api/v1/log/checkpoint/")
                          or "{}").get("size", 1)
        user.call("log inclusion proof", f"api/v1/log/inclusion/?seq={rng.randint(1, size)}")

    public = [
        lambda: user.call("home", ""),
        lambda: user.call("api datasets", "api/v1/datasets/"),
        lambda: user.call("api versions", "api/v1/versions/"),
        lambda: user.call("log checkpoint", "api/v1/log/checkpoint/"),
        lambda: user.call("health", "health/"),
    ]
    if role == "anonymous":
        return public
    if role == "rights_holder":
        return public + [
            lambda: user.call("takedowns page", "takedowns/"),
            lambda: user.call("api takedowns", "api/v1/takedowns/"),
            lambda: user.call("api sources", "api/v1/sources/"),
            lambda: (rng.random() < 0.2
                     and user.call("file a takedown", "api/v1/takedowns/", NOTICE)),
        ]
    if role == "curator":
        return public + [
            lambda: user.call("takedowns page", "takedowns/"),
            lambda: user.call("runs page", "runs/"),
            lambda: user.call("api documents", "api/v1/documents/?limit=50"),
            lambda: user.call("api ingest jobs", "api/v1/ingest-jobs/"),
            lambda: user.call("api takedowns", "api/v1/takedowns/"),
        ]
    return public + [  # auditor
        lambda: user.call("api ledger", "api/v1/ledger/?limit=50"),
        lambda: user.call("api attribution runs", "api/v1/attribution-runs/"),
        lambda: user.call("api checkpoints", "api/v1/checkpoints/"),
        log_proof,
    ]


def drive(base: str, credentials: dict, users: int, duration: float, seed: int) -> Tally:
    tally = Tally()
    by_role: dict[str, list[str]] = defaultdict(list)
    for entry in credentials["users"]:
        role = entry["role"].split(" ")[0]
        by_role["curator" if role in ("admin", "curator") else role].append(entry["username"])
    # 40% anonymous, 20% each of the signed-in kinds, mixed from the first users on.
    mix = ["anonymous", "rights_holder", "anonymous", "curator", "anonymous", "auditor",
           "anonymous", "rights_holder", "curator", "auditor"]
    plan = (mix * (users // len(mix) + 1))[:users]
    stop = time.monotonic() + duration

    def one(index: int, role: str) -> None:
        rng = random.Random(seed * 1000 + index)
        user = User(base, tally)
        if role != "anonymous":
            user.sign_in(rng.choice(by_role[role]), credentials["password"])
        todo = actions(role, user, rng)
        while time.monotonic() < stop:
            rng.choice(todo)()
            time.sleep(rng.uniform(0.2, 1.0))

    threads = [threading.Thread(target=one, args=(i, role), daemon=True)
               for i, role in enumerate(plan)]
    for t in threads:
        t.start()
        time.sleep(0.05)
    for t in threads:
        t.join(duration + 120)
    return tally


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def start_server(state: Path, port: int, web_workers: int) -> subprocess.Popen:
    return start_in_background(state, port,
                               {"TRAILMARK_WEB_WORKERS": str(web_workers), **UNTHROTTLED})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--duration", type=float, default=600.0, help="seconds")
    parser.add_argument("--url", help="a running server (default: start one)")
    parser.add_argument("--state", type=Path, help="its state folder (demo_credentials.json)")
    parser.add_argument("--port", type=int, default=8799)
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    server = None
    if args.url:
        base, state = args.url.rstrip("/") + "/", args.state or ROOT / "var"
    else:
        state = Path(tempfile.mkdtemp(prefix="trailmark-load-"))
        print(f"starting the stack in {state} (log: {state / 'server.log'}) ...", flush=True)
        server = start_server(state, args.port, args.web_workers)
        base = f"http://127.0.0.1:{args.port}/"
    credentials = json.loads((state / "demo_credentials.json").read_text())
    try:
        print(f"{args.users} users for {args.duration:.0f} s against {base}", flush=True)
        started = time.monotonic()
        tally = drive(base, credentials, args.users, args.duration, args.seed)
        elapsed = time.monotonic() - started
        rss = web_worker_rss(server)
    finally:
        if server is not None:
            stop_background(server)
    report(tally, args, elapsed, base, rss)


def web_worker_rss(server: subprocess.Popen[bytes] | None) -> list[float]:
    """Each gunicorn worker's resident memory (MiB) after the load: the processes serving
    config.wsgi whose parent serves it too (the arbiter's forks). Without a server of our own,
    every such process on this machine."""
    import psutil

    processes = psutil.Process(server.pid).children(recursive=True) if server else \
        list(psutil.process_iter())

    def serves(process: psutil.Process) -> bool:
        try:
            line = process.cmdline()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return False
        return any("gunicorn" in part for part in line) and "config.wsgi" in line

    gunicorn = [p for p in processes if serves(p)]
    pids = {p.pid for p in gunicorn}
    return sorted(round(p.memory_info().rss / 2**20, 1) for p in gunicorn
                  if p.ppid() in pids)


RSS_GOAL_MIB = 200  # a web worker after use (issue 19)


def report(tally: Tally, args: argparse.Namespace, elapsed: float, base: str,
           rss: list[float]) -> None:
    every = [s for values in tally.latencies.values() for s in values]
    baseline = pct(tally.latencies["health"], 0.95) if tally.latencies["health"] else None
    rows = []
    print(f"\n{'endpoint':<24}{'n':>7}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
          f"{'errors':>8}{'p95/health':>12}")
    for name in sorted(tally.latencies):
        values = tally.latencies[name]
        row = {"endpoint": name, "n": len(values), "p50_ms": round(pct(values, 0.5), 1),
               "p95_ms": round(pct(values, 0.95), 1), "p99_ms": round(pct(values, 0.99), 1),
               "errors": len(tally.errors.get(name, [])),
               "p95_over_health": round(pct(values, 0.95) / baseline, 2) if baseline else None}
        rows.append(row)
        print(f"{name:<24}{row['n']:>7}{row['p50_ms']:>9}{row['p95_ms']:>9}{row['p99_ms']:>9}"
              f"{row['errors']:>8}{row['p95_over_health'] or '':>12}")
    errors = sum(len(v) for v in tally.errors.values())
    overall = {"requests": len(every), "errors": errors, "throttled": tally.throttled,
               "requests_per_s": round(len(every) / elapsed, 1),
               "p50_ms": round(pct(every, 0.5), 1), "p95_ms": round(pct(every, 0.95), 1),
               "p99_ms": round(pct(every, 0.99), 1),
               "mean_ms": round(statistics.fmean(every) * 1000, 1)}
    print(f"\nall: {overall['requests']} requests in {elapsed:.0f} s "
          f"({overall['requests_per_s']}/s), p50 {overall['p50_ms']} ms, p95 "
          f"{overall['p95_ms']} ms, p99 {overall['p99_ms']} ms; {errors} errors, "
          f"{tally.throttled} throttled")
    for name, samples in tally.errors.items():
        print(f"  errors on {name}: {samples[:3]}")
    print(f"web workers' resident memory after the load: {rss} MiB (goal <= {RSS_GOAL_MIB}: "
          f"{'met' if rss and max(rss) <= RSS_GOAL_MIB else 'not met'})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "benchmark": "load", "users": args.users, "duration_s": round(elapsed, 1),
        "think_time_s": [0.2, 1.0], "target": base,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "overall": overall, "endpoints": rows,
        "web_worker_rss_mib": rss, "rss_goal_mib": RSS_GOAL_MIB,
        "error_samples": {k: v[:5] for k, v in tally.errors.items()},
    }, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
