"""Knowledge transfer under governance (issue 23): do a teacher's canaries reach a student trained
on its synthetic text, can the student's outputs be traced back through that text, how fast are a
source's descendants listed at 10^6 documents, and does a takedown of one source certify the
student? Needs the database: run it on a throwaway one,

    python -m config.embedded exec --throwaway -- .venv/bin/python bench/synthetic_eval.py
    ... bench/synthetic_eval.py --synthetic 500 --scale 100000     # a quick look

Every step is the product's code path with its defaults, in this process:
1. `demo_load`: the demo model (the teacher) trained on the demo's research version, every
   source carrying a canary (8 carriers each).
2. A synthesis job of the teacher (`--synthetic` documents, 10^4 by default): each prompt is the
   opening words of one of the teacher's training documents (the pool cycled through), sampled at
   temperature 1 with the job's per-record seeds: sequence-level distillation on prompts from the
   teacher's own distribution, which knows nothing of canaries.
3. A student trained (default model, `--student-epochs`) on a version holding the synthetic text
   and a clean source the teacher never saw (text of another world, bench/watermark_eval.py);
   then `--extra-seeds` students more (synthesis and training seeds), on `--extra-synthetic`
   documents each.
4. The product's canary test (1,000 nulls, Bonferroni over sources) on teacher and student: the
   p-value of every source's canary in each.
5. Span tracing: the student's greedy outputs for `--outputs` prompts are attributed by spans
   (its own index, over its version); every synthetic document found is traced on through the
   teacher's span index to the teacher's training documents, beside tracing the output directly
   on the teacher's index.
6. The takedown of one source (chosen on the seed-1 student: its lowest canary p; reported on
   the seed-0 student):
   scoped, every match confirmed, data remediated with descendants, the student retrained and
   verified; the student's certificate is reported (verdict, separability, inherited canary).
7. `--scale` documents (10^6) written by COPY as bench/scale.py writes them and curated into a
   version (10^6 members); then the descendants of the taken-down source and of a scale source
   are listed (median of 5) beside a scan of the version members for the same source.
Writes bench/results/synthetic_eval.json. Goal (issue 23): descendants listed in <= 1 s.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import random
import sys
import time
from pathlib import Path
from typing import Any

from watermark_eval import fmt, share

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
# Production's defaults, not the tests' (`config.embedded exec` sets config.settings.test).
os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.local"
os.environ.setdefault("HF_HUB_OFFLINE", "1")

PROMPT_WORDS = 6


def synthesize(teacher: Any, count: int, owner: Any, seed: int) -> Any:
    from tqdm import tqdm

    from provenance.models import Document, SynthesisJob
    from provenance.services.synthesis import synthesis_job_create, synthesis_run

    held = set(teacher.version.exclusions.filter(reason="held_out")
               .values_list("document_id", flat=True))
    texts = (Document.objects.filter(pk__in=teacher.version.members.values("document_id"))
             .exclude(pk__in=held).order_by("sha256").values_list("text", flat=True))
    inputs = [" ".join(t.split()[:PROMPT_WORDS]) for t in texts if len(t.split()) > PROMPT_WORDS]
    job = synthesis_job_create(actor=None, checkpoint=teacher, owner=owner,
                               name=f"distilled demo (seed {seed})",
                               license_expression="CC0-1.0", template="{input}",
                               inputs=inputs[:10_000], count=count,
                               params={"max_new_tokens": 48}, seed=seed, enqueue=False)
    bar = tqdm(total=count, desc=f"synthesis (seed {seed})", unit="doc", mininterval=5)

    def progress(done: int, total: int) -> None:
        bar.update(done - bar.n)

    started = time.perf_counter()
    synthesis_run(job_id=job.pk, on_progress=progress)
    bar.close()
    job = SynthesisJob.objects.get(pk=job.pk)
    assert job.state == "succeeded", job.error
    return job, time.perf_counter() - started, len(inputs)


def clean_source(owner: Any, documents: int) -> Any:
    import tempfile

    from watermark_eval import source_names, source_texts

    from provenance.services.ingest import ingest_path
    from provenance.services.sources import source_create

    rng = random.Random("synthetic eval clean")
    names = source_names(99, 4)
    texts = [t for s in range(4) for t in source_texts(names[s], s, documents // 4, rng)]
    source = source_create(actor=None, owner=owner, name="clean world",
                           license_expression="CC0-1.0")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "clean.jsonl"
        path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
        ingest_path(source=source, path=path, actor=None)
    return source


def publish(slug: str, sources: list[int], intended_use: str) -> Any:
    from provenance.services import curation, datasets

    recipe = datasets.recipe_validate({"intended_use": intended_use, "sources": sources,
                                       "holdout_fraction": 0.05})
    dataset = datasets.dataset_create(actor=None, slug=slug, title=slug)
    draft = curation.version_create_from_plan(dataset=dataset, recipe=recipe,
                                              plan=curation.curation_plan(recipe), actor=None)
    return datasets.dataset_version_publish(version=draft, actor=None)


def canary_p(checkpoint: Any) -> dict[str, dict[str, Any]]:
    from provenance.models import CanaryTest
    from provenance.services.canaries import canary_test_run_create, canary_test_run_execute

    run = canary_test_run_execute(run_id=canary_test_run_create(
        checkpoint=checkpoint, actor=None, enqueue=False).pk)
    assert run is not None and run.state == "succeeded", run
    return {r.source.name: {"source": r.source_id, "inserted": r.inserted,
                            "p_value": r.p_value, "p_adjusted": r.p_adjusted,
                            "detected": r.detected,
                            "inherited_from": r.evidence.get("inherited_from", [])}
            for r in CanaryTest.objects.filter(run=run).select_related("source")}


def canary_words_in(job: Any) -> dict[str, int]:
    """Per source: synthetic documents holding 3 consecutive words of its canary (pseudo-words
    that occur nowhere else): the teacher wrote its canary out."""
    from provenance.engine.canary import CanarySpec, canary_sequence
    from provenance.models import Document, SourceCanary

    texts = list(Document.objects.filter(occurrences__source=job.source)
                 .values_list("text", flat=True))
    found = {}
    for canary in SourceCanary.objects.select_related("source"):
        words = canary_sequence(CanarySpec.from_dict(canary.spec), canary.secret).split()
        grams = [" ".join(words[i:i + 3]) for i in range(len(words) - 2)]
        found[canary.source.name] = sum(any(g in " ".join(t.split()) for g in grams)
                                        for t in texts)
    return found


def distil(teacher: Any, owner: Any, clean: Any, seed: int, count: int, epochs: int
           ) -> dict[str, Any]:
    """One synthesis job and one student trained on its text and the clean source."""
    from provenance.services.training import training_run_create, training_run_execute

    job, synth_s, pool = synthesize(teacher, count, owner, seed)
    print(f"synthesis (seed {seed}): {job.documents_added} documents in {synth_s:.0f} s",
          flush=True)
    version = publish(f"distilled-{seed}", [job.source_id, clean.pk], "academic")
    t0 = time.perf_counter()
    run = training_run_execute(run_id=training_run_create(
        version=version, actor=None, enqueue=False, config={"epochs": epochs, "seed": seed}).pk)
    assert run is not None and run.state == "succeeded", run and run.error
    train_s = time.perf_counter() - t0
    print(f"student (seed {seed}) trained in {train_s:.0f} s", flush=True)
    return {"seed": seed, "job": job, "student": run.checkpoint,
            "synthesis": {"documents": job.documents_added, "requested": count,
                          "prompt_pool": pool, "seconds": round(synth_s, 1),
                          "per_document_ms": round(1000 * synth_s / count, 1),
                          "canary_words_written": canary_words_in(job)},
            "version": {"version": str(version), "documents": version.document_count,
                        "by_source": version.counts_by_source,
                        "exclusions": version.exclusions_by_reason},
            "training": {"checkpoint": run.checkpoint.pk, "seconds": round(train_s, 1),
                         "epochs": epochs},
            "canaries": canary_p(run.checkpoint)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--synthetic", type=int, default=10_000)
    parser.add_argument("--clean", type=int, default=2_000, help="clean documents in the "
                        "student's version")
    parser.add_argument("--student-epochs", type=int, default=5)
    parser.add_argument("--extra-seeds", default="1,2", help="more students, smaller")
    parser.add_argument("--extra-synthetic", type=int, default=2_000)
    parser.add_argument("--outputs", type=int, default=40)
    parser.add_argument("--scale", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path,
                        default=ROOT / "bench" / "results" / "synthetic_eval.json")
    args = parser.parse_args()

    import django

    django.setup()
    import torch
    from django.core.management import call_command

    from provenance.models import ModelCheckpoint, RightsHolder
    from provenance.services.embeddings import documents_embed

    started = time.perf_counter()
    report: dict[str, Any] = {"benchmark": "synthetic_eval", "args": {
        k: str(v) for k, v in vars(args).items()}}
    call_command("migrate", verbosity=0)
    call_command("demo_load", stdout=io.StringIO())
    while documents_embed():
        pass
    teacher = ModelCheckpoint.objects.select_related("run", "version").latest("pk")
    owner = RightsHolder.objects.order_by("pk").first()
    print(f"teacher {teacher.name}: {teacher.version.document_count} documents", flush=True)

    clean = clean_source(owner, args.clean)
    teacher_canaries = canary_p(teacher)
    runs = [distil(teacher, owner, clean, 0, args.synthetic, args.student_epochs)]
    for seed in [int(x) for x in args.extra_seeds.split(",") if x]:
        runs.append(distil(teacher, owner, clean, seed, args.extra_synthetic,
                           args.student_epochs))
    main_run = runs[0]
    job, student = main_run["job"], main_run["student"]
    report["runs"] = [{k: v for k, v in r.items() if k not in ("job", "student")}
                      for r in runs]
    inserted = [n for n, r in teacher_canaries.items() if r["inserted"]]
    detected = [r["canaries"][n]["detected"] for r in runs for n in inserted]
    report["inheritance"] = {
        "teacher_detected": share(sum(teacher_canaries[n]["detected"] for n in inserted),
                                  len(inserted)),
        "student_detected": share(sum(detected), len(detected)),
        "rule": "detected: Bonferroni-adjusted p < 0.01 over the sources (the product's test); "
                "pooled over the students of every seed"}

    from synthetic_parts import descendants_at_scale, takedown, tracing

    canaries = {"teacher": teacher_canaries, "student": main_run["canaries"]}
    report["canaries"] = canaries
    report["tracing"] = tracing(teacher, student, job, args.outputs)
    # The source taken down is chosen on another student (seed 1: its lowest canary p) and
    # reported on this one, so the choice does not flatter the figures reported.
    chooser = runs[1]["canaries"] if len(runs) > 1 else canaries["teacher"]
    chosen = min((r for n, r in chooser.items() if n in inserted),
                 key=lambda r: (r["p_value"], r["source"]))
    report["takedown"] = takedown(chosen["source"], student)
    report["takedown"]["chosen_on"] = f"seed {runs[1]['seed']}" if len(runs) > 1 else "teacher"
    report["descendants"] = descendants_at_scale(chosen["source"], args.scale)
    report["seconds"] = round(time.perf_counter() - started, 1)
    report["machine"] = {"cpus": os.cpu_count(), "torch": torch.__version__,
                         "python": platform.python_version(), "device": "cpu"}

    print(f"\n{'source':<28}{'teacher p':>10}"
          + "".join(f"{'student ' + str(r['seed']):>11}{'written':>8}" for r in runs))
    for name, row in sorted(canaries["teacher"].items()):
        print(f"{name:<28}{row['p_value']:>10.4f}" + "".join(
            f"{r['canaries'][name]['p_value']:>11.4f}"
            f"{r['synthesis']['canary_words_written'].get(name, 0):>8}" for r in runs))
    i = report["inheritance"]
    print(f"canaries detected: teacher {fmt(i['teacher_detected'])}, students "
          f"{fmt(i['student_detected'])} (95% Wilson)")
    t = report["tracing"]
    print(f"\nstudent outputs traced into synthetic text: {t['into_synthetic']} of "
          f"{t['outputs']}; on into the teacher's training data: {t['through_synthetic']}; "
          f"directly on the teacher's index: {t['direct']}")
    c = report["takedown"]
    print(f"takedown of source {c['source']}: student verdict {c['verdict']}, canary tested "
          f"{c['canary_tested']} (inherited from {c['canary_inherited_from']}), canary p "
          f"original {c['original_canary_p']} / retrain {c['retrain_canary_p']}")
    for row in report["descendants"]["rows"]:
        print(f"descendants of {row['source']}: {row['seconds'] * 1000:.1f} ms "
              f"(summary {row['summary_seconds'] * 1000:.1f} ms; members scan "
              f"{row['scan_seconds'] * 1000:.1f} ms) with "
              f"{report['descendants']['documents']:,} documents")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
