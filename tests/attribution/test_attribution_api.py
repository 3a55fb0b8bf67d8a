"""The attribution API and pages: roles, validation answers, progress, the report in JSON, PDF
and HTML."""

import pytest

from attribution.models import AttributionRun, ModelOutput
from attribution.services.runs import attribution_run_execute
from attribution.tasks import span_index_build_task
from provenance.services.embeddings import documents_embed
from provenance.services.training import training_run_create, training_run_execute
from tests.attribution.test_runs import FACT_MODEL, PEOPLE, build_gradient_index

pytestmark = pytest.mark.django_db


@pytest.fixture
def output(make_source, ingest_texts, publish_version):
    source = make_source(name="facts")
    ingest_texts(source, [f"{name} was born in Riga." for name in PEOPLE[:6]]
                 + [f"{name} is a baker in Oslo." for name in PEOPLE[6:]])
    version = publish_version()
    run = training_run_execute(run_id=training_run_create(
        version=version, actor=None, enqueue=False, config={**FACT_MODEL, "epochs": 5}).pk)
    documents_embed(limit=1000)
    return ModelOutput.objects.create(checkpoint=run.checkpoint, prompt="Ada Arden was",
                                      completion=" born in Riga.", state="succeeded")


def finish(run_id: int) -> AttributionRun:
    run = AttributionRun.objects.get(pk=run_id)
    span_index_build_task(run.span_index_id)
    build_gradient_index(run.gradient_index)
    assert attribution_run_execute(run_id=run_id) == "done"
    run.refresh_from_db()
    return run


def evaluation_file(folder, damping=0.003):
    """A bench/attribution_eval.py result (format 2): influence over 1, 3 and 6 checkpoints at
    `damping`, below the goal, behind the embedding peer."""
    import json

    from attribution.engine.features import FeatureSpec

    def figures(lds):
        return {"lds": lds, "lds_ci": [round(lds - 0.06, 3), round(lds + 0.05, 3)],
                "recall_at_1": 0.9, "strict_recall_at_2": 0.5, "mrr": 0.93}

    heldout = {f"influence, {n} checkpoint{'s' if n > 1 else ''}, damping {damping}":
               figures(0.5 + n / 100) for n in (1, 3, 6)}
    heldout |= {"BM25": figures(0.45), "MiniLM cosine": figures(0.58)}
    path = folder / "attribution_eval.json"
    path.write_text(json.dumps({"format": 2, "worlds": 5, "subsets": 100,
                                "default_spec": FeatureSpec().to_dict(),
                                "results": {"heldout": {"0.5": heldout}}}))
    return path


def test_an_auditor_starts_a_run_watches_it_and_reads_the_report(client_as, users, output,
                                                                 client, settings,
                                                                 monkeypatch, tmp_path):
    monkeypatch.setitem(settings.TRAILMARK, "ATTRIBUTION_EVALUATION", evaluation_file(tmp_path))
    auditor = client_as("auditor")
    client.force_login(users["auditor"])
    answer = auditor.post("/api/v1/attribution-runs/", {"output": output.pk}, format="json")
    assert answer.status_code == 202, answer.content
    run_id = answer.json()["id"]
    assert answer.json()["state"] == "queued" and answer.json()["methods"] == [
        "spans", "influence", "watermark", "embedding", "bm25"]
    assert auditor.get(f"/api/v1/attribution-runs/{run_id}/report/").status_code == 404
    page = client.get(f"/attribution/{run_id}/")
    assert page.status_code == 200 and b"<progress" in page.content
    run = finish(run_id)
    assert run.state == "succeeded", run.error
    body = auditor.get(f"/api/v1/attribution-runs/{run_id}/").json()
    assert body["percent"] == 100.0 and body["report_sha256"] == run.report.sha256
    report = auditor.get(f"/api/v1/attribution-runs/{run_id}/report/").json()
    assert report["sha256"] == run.report.sha256 and report["ledger_seq"] > 0
    assert report["body"]["summary"]["sources"][0]["name"] == "facts"
    pdf = auditor.get(f"/api/v1/attribution-runs/{run_id}/report-pdf/")
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    assert b"".join(pdf).startswith(b"%PDF")
    html = client.get(f"/attribution/{run_id}/").content.decode()
    assert run.report.sha256 in html and "Shares by source" in html and "facts" in html
    # the cheap baselines beside influence and spans, and what influence is measured at
    summary = report["body"]["summary"]
    assert "bm25" not in summary["by_method"]  # a baseline: not in the shares
    assert run.results.filter(method="bm25").exists()
    assert set(summary["baselines"]["influence"]["against"]) == {"bm25", "embedding"}
    # what the benchmark measured for this configuration, on worlds it was not tuned on
    evaluation = report["body"]["influence_evaluation"]
    n = len(run.gradient_index.snapshots)
    assert evaluation["checkpoints"] == n and evaluation["applies"], evaluation
    assert evaluation["configuration"].startswith(f"influence, {n} checkpoint")
    assert evaluation["lds"] == 0.5 + n / 100 and len(evaluation["lds_ci"]) == 2
    assert evaluation["best_peer"]["method"] == "MiniLM cosine"
    assert "held-out fact worlds" in evaluation["world"]
    text = pdf_text(b"".join(pdf))
    assert "Against the cheap baselines" in html and "How far influence is measured" in html
    assert "Against the cheap baselines" in text
    for shown in (html, text):
        assert "below the goal" in shown and "not ahead of it" in shown and "95% CI" in shown


def test_a_report_says_when_no_evaluation_applies(output, settings, monkeypatch, tmp_path):
    from attribution.services.reports import influence_evaluation
    from attribution.services.runs import attribution_run_create

    run = attribution_run_create(output=output, actor=None, methods=["influence"],
                                 enqueue=False)
    build_gradient_index(run.gradient_index)
    run.refresh_from_db()

    def evaluated(path):
        monkeypatch.setitem(settings.TRAILMARK, "ATTRIBUTION_EVALUATION", path)
        return influence_evaluation(run)

    assert evaluated(evaluation_file(tmp_path))["applies"]
    other = evaluated(evaluation_file(tmp_path, damping=0.1))
    assert not other["applies"] and "at damping 0.003" in other["reason"]
    assert evaluated(tmp_path / "missing.json")["reason"] == (
        "no evaluation results on this installation")
    (tmp_path / "old.json").write_text('{"results": {"influence x1": {"lds": 0.65}}}')
    assert "predate held-out worlds" in evaluated(tmp_path / "old.json")["reason"]
    (tmp_path / "bad.json").write_text('{"format": 2, "results": []}')
    assert evaluated(tmp_path / "bad.json")["reason"] == "the evaluation results are unreadable"


def pdf_text(data: bytes) -> str:
    """The text fpdf2 wrote (its content streams are zlib-compressed)."""
    import re
    import zlib

    out = []
    for stream in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S):
        try:
            out.append(zlib.decompress(stream).decode("latin-1"))
        except zlib.error:
            continue
    return "".join(out)


def test_the_output_page_starts_a_run_and_lists_it(client, users, output):
    client.force_login(users["auditor"])
    auditor = client
    assert b"Start attribution" in auditor.get(f"/outputs/{output.pk}/").content
    answer = auditor.post(f"/outputs/{output.pk}/", {"methods": ["spans", "embedding"]})
    run = AttributionRun.objects.get()
    assert answer.status_code == 302 and answer["Location"] == f"/attribution/{run.pk}/"
    assert run.methods == ["spans", "embedding"] and run.gradient_index is None
    assert f"run {run.pk}".encode() in auditor.get(f"/outputs/{output.pk}/").content


@pytest.mark.parametrize("payload, field", [
    ({}, "output"),
    ({"output": 999999}, "output"),
    ({"output": "OUT", "methods": ["spans", "palmistry"]}, "methods"),
    ({"output": "OUT", "params": {"spans": {"min_length": -1}}}, "params"),
    ({"output": "OUT", "params": {"embedding": {"colour": 1}}}, "params"),
])
def test_bad_requests_get_a_400_naming_the_field(client_as, output, payload, field):
    payload = {k: (output.pk if v == "OUT" else v) for k, v in payload.items()}
    answer = client_as("auditor").post("/api/v1/attribution-runs/", payload, format="json")
    assert answer.status_code == 400 and field in answer.json(), answer.content
    assert not AttributionRun.objects.exists()


def test_rights_holders_and_anonymous_visitors_cannot_start_or_read_runs(client_as, output,
                                                                          client, users):
    holder = client_as("holder_a")
    assert holder.post("/api/v1/attribution-runs/", {"output": output.pk},
                       format="json").status_code == 403
    assert client.post("/api/v1/attribution-runs/", {"output": output.pk},
                       format="json").status_code in (401, 403)
    client_as("auditor").post("/api/v1/attribution-runs/", {"output": output.pk}, format="json")
    run = AttributionRun.objects.get()
    assert holder.get(f"/api/v1/attribution-runs/{run.pk}/").status_code == 403
    assert client.get(f"/api/v1/attribution-runs/{run.pk}/").status_code in (401, 403)
    client.force_login(users["holder_a"])
    assert client.get(f"/attribution/{run.pk}/").status_code == 404
    assert client.post(f"/outputs/{output.pk}/").status_code == 404
    assert client_as("auditor").post("/api/v1/gradient-indexes/", {
        "checkpoint": output.checkpoint_id}, format="json").status_code == 403


def test_staff_build_a_gradient_index_through_the_api(client_as, output):
    curator = client_as("curator")
    answer = curator.post("/api/v1/gradient-indexes/", {"checkpoint": output.checkpoint_id,
                                                        "spec": {"k_max": 8}}, format="json")
    assert answer.status_code == 202 and answer.json()["spec"]["k_max"] == 8
    bad = curator.post("/api/v1/gradient-indexes/", {"checkpoint": output.checkpoint_id,
                                                     "spec": {"k_max": 0}}, format="json")
    assert bad.status_code == 400 and "spec" in bad.json()
