"""Public pages and the staff dashboard with 10^6 documents in the database, at 20 concurrent
clients.

    python bench/dashboard_load.py [--documents 1000000] [--clients 20] [--duration 120]

1. Builds (once: the state folder is kept, `--state`) a workspace on the embedded PostgreSQL and
   Redis: the demo, then `--documents` synthetic documents in 20 sources (several licences,
   acquisition types, domains and declared languages, one source opted out) ingested through
   the real ingest path; a version curated from them through the real curation (licence policy,
   opt-outs, MinHash near-duplicates, hold-out), published, its composition counted and its card
   rendered as the worker would; a version derived from it without 100 documents (a takedown's
   remediation); a model registered on each (the second one's ancestry holds both versions).
   Each step's time is reported.
2. Serves it with gunicorn as `make run` does (2 threaded workers unless `--web-workers`), with
   the per-address rate limits lifted (every client here is 127.0.0.1).
3. One client alone reads each page once (its first read: what a count made on demand costs)
   and 20 times more (the median: the page's own cost, with no queue).
4. `--clients` clients in closed loop (no think time) for `--duration` seconds: three quarters
   anonymous, reading the public pages; a quarter curators, reading the staff dashboard and its
   live jobs part. Every client also reads /health/ (one query), the baseline of the same run.

Prints a table (first read and median alone; p50, p95, p99 under load and p95 over /health/'s
p95) and writes
bench/results/dashboard_load.json. The goal: p95 <= 150 ms for every page.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from load import UNTHROTTLED, Tally, User, pct  # noqa: E402  (bench/load.py: the same timed client)

from config.embedded import services  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "dashboard_load.json"
GOAL_MS = 150.0
DATASET = "bench-million"
SOURCES = [  # (name, licence, acquisition, domain, language declared by the records)
    ("Wire Service Archive", "CC-BY-4.0", "licensed", "wire.example", "en"),
    ("Open Encyclopedia Dump", "CC-BY-SA-4.0", "public_dataset", "encyclopedia.example", "en"),
    ("Public Domain Books", "CC0-1.0", "public_dataset", "books.example", "en-GB"),
    ("Forum Crawl", "MIT", "crawled", "forum.example", "en"),
    ("News Crawl FR", "CC-BY-4.0", "crawled", "actualites.example", "fr"),
    ("News Crawl DE", "CC-BY-4.0", "crawled", "nachrichten.example", "de"),
    ("Lecture Transcripts", "CC-BY-NC-4.0", "licensed", "lectures.example", "en"),
    ("Code Comments", "Apache-2.0", "crawled", "code.example", ""),
    ("Recipes", "CC-BY-4.0", "crawled", "recipes.example", "es"),
    ("Patents", "CC0-1.0", "public_dataset", "patents.example", "en"),
    ("Support Tickets", "NOASSERTION", "user_data", "support.example", "en"),
    ("Synthetic Dialogues", "MIT", "synthetic", "synthetic.example", "en"),
    ("Poetry Magazine", "LicenseRef-Trailmark-Academic-Only", "licensed", "poetry.example", "en"),
    ("Legal Opinions", "CC0-1.0", "public_dataset", "courts.example", "en"),
    ("Travel Blogs", "CC-BY-4.0", "crawled", "travel.example", "it"),
    ("Science Abstracts", "CC-BY-4.0", "public_dataset", "abstracts.example", "en"),
    ("Game Wikis", "CC-BY-SA-4.0", "crawled", "games.example", "en"),
    ("Subtitles", "CC-BY-4.0", "licensed", "subtitles.example", "pt-BR"),
    ("Opted-out Magazine", "CC-BY-4.0", "crawled", "optedout.example", "en"),
    ("Company Wiki", "NOASSERTION", "user_data", "wiki.example", ""),
]


def step(name: str, timings: dict[str, float]):  # type: ignore[no-untyped-def]
    """A context manager that prints and records how long a build step took."""
    import contextlib

    @contextlib.contextmanager
    def timed():  # type: ignore[no-untyped-def]
        print(f"- {name} ...", flush=True)
        started = time.perf_counter()
        yield
        timings[name] = round(time.perf_counter() - started, 1)
        print(f"  {name}: {timings[name]} s", flush=True)

    return timed()


def write_corpus(folder: Path, documents: int, seed: int = 11) -> list[Path]:
    """One JSONL file per source: distinct texts of 40-120 words from a 20,000-word vocabulary
    (about 1 in 50 a near-copy of an earlier one), each with its URL and declared language."""
    import numpy as np
    from tqdm import tqdm

    rng = np.random.default_rng(seed)
    syllables = ["ka", "lo", "mi", "ner", "tu", "sa", "vel", "or", "en", "ti", "ra", "bo", "que",
                 "dan", "shi", "pe", "lu", "mar", "go", "ix"]
    vocab = np.array(["".join(rng.choice(syllables, size=rng.integers(2, 5)))
                      for _ in range(20_000)])
    per_source = np.diff(np.linspace(0, documents, len(SOURCES) + 1).astype(int))
    paths = []
    bar = tqdm(total=documents, unit=" docs", desc="writing")
    for index, ((_, _, _, domain, language), n) in enumerate(zip(SOURCES, per_source,
                                                                  strict=True)):
        path = folder / f"source-{index:02d}.jsonl"
        previous = ""
        with path.open("w", encoding="utf-8") as out:
            for start in range(0, n, 10_000):
                size = min(10_000, n - start)
                lengths = rng.integers(40, 120, size=size)
                words = vocab[rng.integers(0, len(vocab), size=int(lengths.sum()))]
                offsets = np.concatenate([[0], np.cumsum(lengths)])
                for i in range(size):
                    text = " ".join(words[offsets[i]:offsets[i + 1]])
                    if previous and rng.random() < 0.02:
                        text = previous + " " + text.split(" ", 1)[0]  # a near-copy
                    previous = text
                    record = {"id": f"{index}-{start + i}", "text": text,
                              "url": f"https://{domain}/{start + i}"}
                    if language:
                        record["language"] = language
                    out.write(json.dumps(record) + "\n")
                bar.update(size)
        paths.append(path)
    bar.close()
    return paths


def build(documents: int, timings: dict[str, float]) -> dict[str, object]:
    """The workspace, built once; returns what the load reads (slug, model ids, password)."""
    from django.conf import settings
    from django.core.management import call_command
    from django.utils import timezone

    from provenance.models import DatasetVersion, Document, ModelCheckpoint, User
    from provenance.services import curation, datasets, sources, usage
    from provenance.services.ingest import ingest_path
    from provenance.services.training import checkpoint_register_local

    state = Path(settings.STATE_DIR)
    with step("migrate", timings):
        call_command("migrate", "--no-input", "-v", "0")
    if not User.objects.exists():
        with step("demo workspace (manage.py demo_load)", timings):
            call_command("demo_load", "--if-empty")
    admin = User.objects.get(username="admin")
    have = Document.objects.count()
    if have < documents:
        from tqdm import tqdm

        holder = sources.rights_holder_create(actor=admin, name="Bench Holdings",
                                              contact_email="bench@bench.example", verified=True)
        made = []
        for name, licence, acquisition, domain, _ in SOURCES:
            source = sources.source_create(actor=admin, owner=holder, name=name,
                                           license_expression=licence,
                                           uri=f"https://{domain}/", acquisition=acquisition)
            made.append(source)
            if name.startswith("Opted-out"):
                usage.opt_out_signal_record(source=source, actor=admin, kind="tdmrep",
                                            value="tdm-reservation: 1",
                                            observed_at=timezone.now())
        with tempfile.TemporaryDirectory(dir=state) as folder:
            with step(f"write {documents:,} documents as JSONL", timings):
                paths = write_corpus(Path(folder), documents - have)
            with step(f"ingest {documents - have:,} documents", timings):
                bar = tqdm(total=documents - have, unit=" docs", desc="ingesting")
                for source, path in zip(made, paths, strict=True):
                    done = [0]

                    def progress(job, done=done):  # type: ignore[no-untyped-def]
                        bar.update(job.rows_read - done[0])
                        done[0] = job.rows_read

                    ingest = ingest_path(source=source, path=path, actor=admin,
                                         on_progress=progress)
                    assert ingest.state == "succeeded", ingest.error
                bar.close()
    version = DatasetVersion.objects.filter(dataset__slug=DATASET, number=1).first()
    if version is None:
        from dashboards.services import version_card_render

        dataset = datasets.dataset_create(actor=admin, slug=DATASET,
                                          title="A million documents for the dashboard benchmark")
        job = datasets.curation_job_create(dataset=dataset, actor=admin, enqueue=False, recipe={
            "intended_use": "commercial", "publish": True, "holdout_fraction": 0.01})
        with step("curate and publish v1 (licences, opt-outs, near-duplicates)", timings):
            finished = curation.curation_run(job_id=job.pk)
            assert finished is not None and finished.version is not None, finished
            version = finished.version
        with step("count v1's composition and render its cards (the worker's card task)",
                  timings):
            version_card_render(version_id=version.pk)
        with step("derive v2 without 100 documents (a takedown's remediation)", timings):
            removed = set(version.members.order_by("document_id")
                          .values_list("document_id", flat=True)[:100])
            derived = curation.version_derive(parent=version, detail="benchmark takedown",
                                              actor=admin, remove=removed)
            version_card_render(version_id=derived.pk)
        demo_model = ModelCheckpoint.objects.filter(kind="trained").order_by("pk").first()
        assert demo_model is not None, "the demo trains a model"
        base = checkpoint_register_local(path=Path(demo_model.path), version=version,
                                         name="bench-base", actor=admin)
        checkpoint_register_local(path=Path(demo_model.path), version=derived,
                                  name="bench-remediated", actor=admin, parent=base)
        print(f"  v1: {version.document_count:,} documents; excluded "
              f"{version.exclusions_by_reason}", flush=True)
    from django.core.cache import cache

    from dashboards.selectors import ancestry_cache_key

    base = ModelCheckpoint.objects.get(name="bench-base")
    remediated = ModelCheckpoint.objects.get(name="bench-remediated")
    # Measure the first read of the two-version summary as a first reader meets it.
    cache.delete(ancestry_cache_key([base.version_id, remediated.version_id]))
    # The build's timings are kept with the state it built, for every later run's results.
    kept = state / "bench_build_timings.json"
    if len(timings) > 1:
        kept.write_text(json.dumps(timings, indent=2))
    elif kept.exists():
        timings.update(json.loads(kept.read_text()))
    credentials = json.loads((state / "demo_credentials.json").read_text())
    return {"documents": Document.objects.count(), "base": base.pk,
            "remediated": remediated.pk, "password": credentials["password"],
            "members": DatasetVersion.objects.get(dataset__slug=DATASET, number=1)
            .document_count}


def pages(world: dict[str, object]) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    public = [("home", ""), ("transparency", "transparency/"),
              ("version v1", f"datasets/{DATASET}/v1/"), ("version v2", f"datasets/{DATASET}/v2/"),
              ("model card", f"models/{world['base']}/"),
              ("AI Act summary", f"models/{world['base']}/ai-act/"),
              ("AI Act summary, 2 versions", f"models/{world['remediated']}/ai-act/")]
    staff = [("staff dashboard", "staff/"), ("staff jobs part", "staff/?part=jobs")]
    return public, staff


def serve(env: dict[str, str], port: int, workers: int) -> subprocess.Popen[bytes]:
    env = {**env, "DJANGO_SETTINGS_MODULE": "config.settings.local", **UNTHROTTLED}
    subprocess.run([sys.executable, str(ROOT / "manage.py"), "collectstatic", "--no-input",
                    "-v", "0"], env=env, check=True)
    from config.embedded import web_command

    web = subprocess.Popen(web_command("127.0.0.1", port),
                           env={**env, "TRAILMARK_WEB_WORKERS": str(workers)}, cwd=ROOT,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(120):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/", timeout=5):
                return web
        except OSError:
            time.sleep(0.5)
    web.kill()
    raise SystemExit("gunicorn did not answer")


def drive(base: str, world: dict[str, object], clients: int, duration: float,
          seed: int) -> tuple[Tally, dict[str, float], dict[str, float]]:
    public, staff = pages(world)
    # Every gunicorn worker loads Django on its first request: warm them all first.
    warm = [threading.Thread(target=User(base, Tally()).call, args=("health", "health/"))
            for _ in range(8)]
    for thread in warm:
        thread.start()
    for thread in warm:
        thread.join()
    # Then, one client alone: the first read of each page (what a lazy count would cost) and
    # the median of 20 more (the page's own cost, with no queue).
    alone = Tally()
    curator = User(base, alone)
    curator.sign_in("curator", str(world["password"]))
    cold: dict[str, float] = {}
    for name, path in [("health", "health/")] + public + staff:
        started = time.perf_counter()
        curator.call(name, path)
        cold[name] = round((time.perf_counter() - started) * 1000, 1)
        alone.latencies[name].clear()
        for _ in range(20):
            curator.call(name, path)
    if alone.errors:
        raise SystemExit(f"errors before the load: {dict(alone.errors)}")
    single = {name: round(pct(values, 0.5), 1) for name, values in alone.latencies.items()
              if name not in ("sign-in page", "sign in")}
    tally = Tally()
    stop = time.monotonic() + duration

    def one(index: int) -> None:
        rng = random.Random(seed + index)
        user = User(base, tally)
        mine = public
        if index % 4 == 3:  # a quarter are curators
            user.sign_in("curator", str(world["password"]))
            mine = staff
        while time.monotonic() < stop:
            name, path = rng.choice(mine)
            user.call(name, path)
            if rng.random() < 0.2:
                user.call("health", "health/")

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(duration + 120)
    for name in ("sign-in page", "sign in"):
        tally.latencies.pop(name, None)
    return tally, cold, single


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--documents", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--duration", type=float, default=120.0, help="seconds")
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--state", type=Path, default=ROOT / "var" / "bench-dashboard",
                        help="kept between runs: the build is done once")
    parser.add_argument("--port", type=int, default=8798)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    args.state.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    with services(args.state.resolve()) as env:
        os.environ.update(env)
        os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.local"
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import django

        django.setup()
        world = build(args.documents, timings)
        from django.db import connections

        connections.close_all()
        web = serve(env, args.port, args.web_workers)
        try:
            print(f"{args.clients} clients for {args.duration:.0f} s; "
                  f"{world['documents']:,} documents, {world['members']:,} in v1", flush=True)
            started = time.monotonic()
            tally, cold, single = drive(f"http://127.0.0.1:{args.port}/", world, args.clients,
                                args.duration, args.seed)
            elapsed = time.monotonic() - started
        finally:
            web.terminate()
            web.wait(30)
    report(tally, cold, single, timings, world, args, elapsed)


def report(tally: Tally, cold: dict[str, float], single: dict[str, float],
           timings: dict[str, float],
           world: dict[str, object], args: argparse.Namespace, elapsed: float) -> None:
    baseline = pct(tally.latencies["health"], 0.95)
    rows = []
    print(f"\n{'page':<28}{'first ms':>9}{'alone ms':>9}{'n':>7}{'p50 ms':>9}{'p95 ms':>9}"
          f"{'p99 ms':>9}{'p95/health':>12}{'goal':>6}")
    for name in sorted(tally.latencies, key=lambda n: (n == "health", n)):
        values = tally.latencies[name]
        p95 = pct(values, 0.95)
        row = {"page": name, "first_ms": cold.get(name), "alone_p50_ms": single.get(name),
               "n": len(values),
               "p50_ms": round(pct(values, 0.5), 1), "p95_ms": round(p95, 1),
               "p99_ms": round(pct(values, 0.99), 1),
               "p95_over_health": round(p95 / baseline, 2),
               "errors": len(tally.errors.get(name, [])),
               "meets_goal": p95 <= GOAL_MS}
        rows.append(row)
        print(f"{name:<28}{row['first_ms'] or '':>9}{row['alone_p50_ms'] or '':>9}{row['n']:>7}"
              f"{row['p50_ms']:>9}"
              f"{row['p95_ms']:>9}{row['p99_ms']:>9}{row['p95_over_health']:>12}"
              f"{'ok' if row['meets_goal'] else 'MISS':>6}")
    errors = sum(len(v) for v in tally.errors.values())
    requests = sum(len(v) for v in tally.latencies.values())
    print(f"\n{requests} requests in {elapsed:.0f} s ({requests / elapsed:.1f}/s), {errors} errors;"
          f" goal p95 <= {GOAL_MS:.0f} ms")
    for name, samples in tally.errors.items():
        print(f"  errors on {name}: {samples[:3]}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "benchmark": "dashboard_load", "documents": world["documents"],
        "version_members": world["members"], "clients": args.clients,
        "duration_s": round(elapsed, 1), "web_workers": args.web_workers,
        "goal_p95_ms": GOAL_MS, "build_s": timings,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "requests": requests, "errors": errors, "pages": rows,
        "error_samples": {k: v[:5] for k, v in tally.errors.items()},
    }, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
