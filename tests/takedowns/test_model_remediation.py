"""Model remediation and verification: retrain, unlearning and the output filter on a tiny model
that memorised a claimed source, the certificate, the decision notice and the receipt."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core import mail

from attribution.models import ModelOutput
from attribution.services.outputs import model_output_create, model_output_generate
from attribution.services.runs import attribution_run_create, attribution_run_execute
from attribution.services.spans import span_index_build
from core.storage import artifact_path
from provenance.engine import lm
from provenance.engine.verify import check_receipt
from provenance.engine.verify import main as verify_main
from provenance.ledger.proofs import ledger_verifier_key
from provenance.models import Document, LedgerEntry, ModelCheckpoint
from takedowns.engine.output_filter import BLOCKED, shingle_hashes
from takedowns.models import TakedownRequest, UnlearningRun
from takedowns.services.decision import decision_notice, notice_text
from takedowns.services.requests import takedown_file
from takedowns.services.unlearning import unlearning_run_execute, verification_sets
from takedowns.services.verification import takedown_verify, unlearning_retain_ids
from tests.fixtures.remediation import MODEL, data_remediated

pytestmark = pytest.mark.django_db


def _attributed_output(trained) -> ModelOutput:
    """An output of the original that repeats an essay, attributed (spans) before the request."""
    essay = Document.objects.filter(occurrences__source=trained["essays"],
                                    memberships__version=trained["version"]).first()
    words = essay.text.split()
    output = ModelOutput.objects.create(checkpoint=trained["checkpoint"],
                                        prompt=" ".join(words[:6]),
                                        completion=" " + " ".join(words[6:24]),
                                        state="succeeded", params={"max_new_tokens": 24})
    run = attribution_run_create(output=output, actor=None, methods=["spans"], enqueue=False)
    span_index_build(index_id=run.span_index.pk)
    assert attribution_run_execute(run_id=run.pk) == "done"
    assert run.results.filter(document=essay).exists()
    return output


def test_remediation_verification_decision_and_receipt(trained, client_as, tmp_path,
                                                       django_capture_on_commit_callbacks):
    triggering = _attributed_output(trained)
    request = data_remediated(trained, client_as)
    assert request.scope["remediation"]["purge_pending"] is True
    url = f"/api/v1/takedowns/{request.pk}/"
    curator = client_as("curator")
    npo = {"steps": 20, "eval_every": 5, "learning_rate": 5e-4, "retain_documents": 60}
    started = curator.post(f"{url}remediate-models/", {
        "methods": ["retrain", "npo", "output_filter"], "config": {"npo": npo}}, format="json")
    assert started.status_code == 202, started.json()
    assert [r["method"] for r in started.json()] == ["retrain", "npo", "output_filter"]
    again = curator.post(f"{url}remediate-models/", {"methods": ["npo"]}, format="json")
    assert again.status_code == 409  # runs in progress
    for run in UnlearningRun.objects.filter(request=request).order_by("pk"):
        run = unlearning_run_execute(run_id=run.pk)
        assert run.state == "succeeded", run.error
    runs = {r.method: r for r in UnlearningRun.objects.filter(request=request)}
    assert runs["retrain"].result.version_id != trained["version"].pk
    assert [c["step"] for c in runs["npo"].candidates] == [5, 10, 15, 20]

    # The interim filter blocks verbatim spans of the removed text at generation.
    checkpoint = trained["checkpoint"]
    forget = verification_sets(checkpoint, runs["npo"].forget_documents, 10).forget
    prompt = " ".join(forget[0].split()[:8])
    model, tokenizer = lm.load(checkpoint.local_path)
    raw = lm.generate(model, tokenizer, prompt, lm.DecodeParams(max_new_tokens=24))
    output = model_output_create(checkpoint=checkpoint, prompt=prompt, actor=None,
                                 params={"max_new_tokens": 24}, enqueue=False)
    output = model_output_generate(output_id=output.pk)
    hashes = shingle_hashes(forget, 8)
    if shingle_hashes([raw], 8).size and set(shingle_hashes([raw], 8)) & set(hashes):
        assert BLOCKED in output.completion and output.filtered["words_blocked"] > 0
    assert not set(shingle_hashes([output.completion.replace(BLOCKED, " ")], 8)) & set(hashes)

    request = takedown_verify(request_id=request.pk)
    assert request.state == "verifying"
    certificate = request.verification
    assert certificate["state"] == "done", certificate.get("error")
    [entry] = certificate["checkpoints"]
    original, retrain = entry["original"], entry["retrain"]
    # Chosen on one split, certified on another: every figure below is the test split's.
    split = entry["splits"]
    assert entry["forget_documents"] == split["test"]["forget_documents"] >= 8
    assert split["validation"]["forget_documents"] >= 8
    assert split["validation"]["holdout_documents"] + entry["holdout_documents"] >= 10
    forget_ids = runs["npo"].forget_documents
    unlearned_on = set(verification_sets(checkpoint, forget_ids, 60).retain_ids)
    sets = verification_sets(checkpoint, forget_ids, 256,
                             exclude_retain=unlearning_retain_ids(list(runs.values())))
    assert unlearned_on and not set(sets.retain_ids) & unlearned_on  # utility on unseen retain
    validation, test = sets.split()
    assert not set(validation.forget) & set(test.forget)
    assert sorted(validation.forget + test.forget) == sorted(sets.forget)
    assert validation.canary[0] == test.canary[0] and not set(validation.canary[1:]) & set(
        test.canary[1:])
    assert entry["canary_tested"]  # every carrier of the essays' canary was removed
    # The original memorised the source; the retrain never saw it.
    assert original["mia_auc_loss"] > retrain["mia_auc_loss"]
    assert original["forget_loss"] < retrain["forget_loss"]
    assert entry["separability"]["separable"], entry["separability"]
    [before_after] = entry["attribution"]["outputs"]
    assert before_after["output"] == triggering.pk and before_after["credited_by"] == ["spans"]
    assert before_after["verbatim_share_before"] > 0.5
    retrained = [v for k, v in before_after["verbatim_share_after"].items()
                 if k.startswith("retrain")]
    assert retrained and retrained[0] < before_after["verbatim_share_before"]
    rows = {r["method"]: r for r in entry["runs"]}
    assert rows["output_filter"]["verdict"] == "interim"
    assert rows["output_filter"]["summary"]["verbatim_rouge_l"] <= original["verbatim_rouge_l"]
    table = rows["npo"]["candidates"]
    assert [c["step"] for c in table] == [5, 10, 15, 20]
    passing = [c["step"] for c in table if c["verdict"] == "pass"]
    # The first candidate meeting every criterion on validation, never simply the last; the
    # run's verdict and figures are that candidate's, measured once on test.
    assert rows["npo"]["chosen_step"] == (passing[0] if passing else None)
    assert rows["npo"]["chosen_on"] == "validation"
    if passing:
        assert rows["npo"]["certified_on"] == "test"
        assert rows["npo"]["validation"]["summary"] == next(
            c["summary"] for c in table if c["step"] == passing[0])
    promoted = rows["npo"]["verdict"] == "pass"
    # graded: a retrain is exact; an unlearning run is empirical only if it also passed the
    # robustness probes on the test split (4-bit weights, relearning), else failed
    assert rows["retrain"]["grade"] == "exact" and rows["output_filter"]["grade"] == "interim"
    assert rows["npo"]["grade"] == ("empirical" if promoted else "failed")
    if rows["npo"].get("probes"):
        assert set(rows["npo"]["probes"]) == {"quantized_4bit", "relearned"}
        assert promoted == all(p["verdict"] == "pass" for p in rows["npo"]["probes"].values())
        assert rows["npo"]["probes"]["relearned"]["against"] == "the retrain, probed the same way"
    [verified] = LedgerEntry.objects.filter(event="takedown.verified")
    logged = verified.payload["runs"][str(runs["npo"].pk)]
    assert logged["grade"] == rows["npo"]["grade"] and len(logged["forget_set_sha256"]) == 64
    assert logged["model_before_sha256"] == checkpoint.sha256 and logged["config"]["seed"] == 0
    # time to a verified model counts every candidate's measurement, not the unlearning alone
    assert rows["npo"]["measuring_s"] > 0
    assert rows["npo"]["time_to_verified_s"] >= rows["npo"]["measuring_s"]
    # The retrain never saw the work: exact, whatever its figures against chance say.
    assert rows["retrain"]["verdict"] == "exact" and "by construction" in rows["retrain"]["why"]
    for row in table:
        criteria = {c["status"] for c in row["criteria"].values()}
        assert row["verdict"] == ("fail" if "fail" in criteria else
                                  "inconclusive" if "insufficient" in criteria else "pass")
    npo_run = UnlearningRun.objects.get(pk=runs["npo"].pk)
    assert npo_run.verdict == rows["npo"]["verdict"]
    if promoted:
        assert npo_run.result.kind == "unlearned" and npo_run.result.parent_id == checkpoint.pk
    assert ModelCheckpoint.objects.filter(kind="unlearned").count() == (1 if promoted else 0)

    # Deciding: a reason is needed unless verification passed; the purge waited till now.
    reasons = "" if certificate["verdict"] == "pass" else "retrained; reviewed the figures"
    with django_capture_on_commit_callbacks(execute=True):
        decided = curator.post(f"{url}decide/", {"to": "decided", "reasons": reasons},
                               format="json")
    assert decided.status_code == 200, decided.json()
    body = decided.json()
    assert body["state"] == "decided"
    notice = body["decision"]
    assert notice["removed"]["documents"] == len(request.scope["remediation"]["documents"])
    assert notice["removed"]["text_purged"] is True
    assert {m["method"] for m in notice["models"]} == {
        "Full retrain on the remediated version", "Negative preference optimisation "
        "(unlearning)", "Interim output filter (blocks verbatim spans)"}
    removed = Document.objects.filter(pk__in=request.scope["remediation"]["documents"])
    assert all(d.text_purged and d.text == "" for d in removed)

    receipt = client_as("holder_a").get(f"{url}receipt/").json()
    assert receipt["state"] == "decided" and check_receipt(receipt) == []
    assert receipt["entry"]["payload"]["notice_sha256"]
    path = tmp_path / "receipt.json"
    path.write_text(json.dumps(receipt))
    assert verify_main(["receipt", str(path), "--key", ledger_verifier_key()]) == 0
    assert verify_main(["receipt", str(path)]) == 1  # no key: consistency only, not verified
    forged = {**receipt, "entry": {**receipt["entry"], "payload": {
        **receipt["entry"]["payload"], "to": "rejected"}}}
    assert check_receipt(forged) == [f"entry {receipt['entry']['header']['seq']}: the payload "
                                     f"does not match its hash"]
    [message] = [m for m in mail.outbox if "decided" in m.subject]
    assert "Receipt: ledger entry" in message.body and "Model " in message.body


def test_a_candidate_that_holds_on_test_and_under_the_probes_is_graded_empirical(
        trained, client_as):
    """The grading path end to end, with a candidate known not to hold the work: the npo run's
    only candidate is a copy of the retrain. It passes on validation, then on test, then after
    4-bit rounding and after relearning (each against the retrain probed the same way): graded
    empirical, promoted, its probes and timings in the certificate."""
    import shutil

    request = data_remediated(trained, client_as)
    url = f"/api/v1/takedowns/{request.pk}/"
    started = client_as("curator").post(f"{url}remediate-models/", {
        "methods": ["retrain", "npo"], "config": {"npo": {"steps": 2, "eval_every": 2}}},
        format="json")
    assert started.status_code == 202, started.json()
    for run in UnlearningRun.objects.filter(request=request).order_by("pk"):
        assert unlearning_run_execute(run_id=run.pk).state == "succeeded"
    retrain = UnlearningRun.objects.get(request=request, method="retrain")
    npo = UnlearningRun.objects.get(request=request, method="npo")
    planted = artifact_path(npo.candidates[0]["path"])
    shutil.rmtree(planted)
    shutil.copytree(retrain.result.local_path, planted)
    UnlearningRun.objects.filter(pk=npo.pk).update(candidates=[npo.candidates[0]])
    certificate = takedown_verify(request_id=request.pk).verification
    assert certificate["state"] == "done", certificate.get("error")
    rows = {r["method"]: r for r in certificate["checkpoints"][0]["runs"]}
    row = rows["npo"]
    assert row["chosen_on"] == "validation" and row["certified_on"] == "test"
    assert {k: p["verdict"] for k, p in row["probes"].items()} == {
        "quantized_4bit": "pass", "relearned": "pass"}, row["probes"]
    assert row["grade"] == "empirical" and row["verdict"] == "pass"
    assert row["probes"]["relearned"]["public_documents"] >= 1
    assert row["time_to_verified_s"] >= row["measuring_s"] > 0
    assert UnlearningRun.objects.get(pk=npo.pk).result.kind == "unlearned"
    assert rows["retrain"]["grade"] == "exact"
    # the ledger's entry (what a receipt proves) and the decision notice carry the grade, the
    # split the candidate was chosen on and the probes' verdicts
    entry = LedgerEntry.objects.filter(event="takedown.verified").latest("seq")
    logged = entry.payload["runs"][str(npo.pk)]
    assert (logged["grade"], logged["chosen_on"], logged["certified_on"]) == (
        "empirical", "validation", "test")
    assert logged["probes"] == {"quantized_4bit": "pass", "relearned": "pass"}
    notice = decision_notice(TakedownRequest.objects.get(pk=request.pk))
    [line] = [m for m in notice["models"] if m["method"] == npo.get_method_display()]
    assert line["probes"] == logged["probes"] and line["chosen_on"] == "validation"
    [text] = [t for t in notice_text(notice) if "graded empirical" in t]
    assert "chosen on the validation split" in text and "after 4-bit weights pass" in text


def test_model_remediation_is_refused_out_of_turn_and_for_bad_input(trained, client_as):
    users = trained["users"]
    request = takedown_file(actor=users["holder_a"], claimed_sources=[trained["essays"]], data={
        "legal_basis": "voluntary", "claimant_name": "Ann", "claimant_email": "a@a.example",
        "works": [{"title": "Essays", "identifiers": ["essays"]}]})
    url = f"/api/v1/takedowns/{request.pk}/"
    curator = client_as("curator")
    early = curator.post(f"{url}remediate-models/", {"methods": ["retrain"]}, format="json")
    assert early.status_code == 409
    request = data_remediated(trained, client_as)
    url = f"/api/v1/takedowns/{request.pk}/"
    holder = client_as("holder_a").post(f"{url}remediate-models/", {"methods": ["retrain"]},
                                        format="json")
    assert holder.status_code == 403
    bad = curator.post(f"{url}remediate-models/", {"methods": ["forget-harder"]}, format="json")
    assert bad.status_code == 400 and "methods" in bad.json()
    options = curator.post(f"{url}remediate-models/", {
        "methods": ["npo"], "config": {"npo": {"steps": 0}}}, format="json")
    assert options.status_code == 400 and "steps" in str(options.json())
    unrelated = curator.post(f"{url}remediate-models/", {
        "methods": ["npo"], "checkpoints": [trained["checkpoint"].pk + 999]}, format="json")
    assert unrelated.status_code == 400
    assert not UnlearningRun.objects.exists()
    started = curator.post(f"{url}remediate-models/", {"methods": ["npo"]}, format="json")
    [run] = started.json()
    early_decision = curator.post(f"{url}decide/", {"to": "decided", "reasons": "x"},
                                  format="json")
    assert early_decision.status_code == 409  # model_remediation cannot be decided
    cancelled = curator.post(f"{url}cancel-run/", {"run": run["id"]}, format="json")
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    assert curator.post(f"{url}cancel-run/", {"run": run["id"]}, format="json"
                        ).status_code == 409
    assert curator.post(f"{url}cancel-run/", {"run": 10**6}, format="json").status_code == 404


def test_an_unlearning_run_killed_mid_way_resumes_from_its_last_candidate(trained, client_as):
    """A worker killed while unlearning leaves the run `running` with its saved state; the
    redelivered task goes on from there and the run ends with every candidate once."""
    from core.jobs import job_lock
    from takedowns.engine import unlearning
    from takedowns.engine.unlearn_config import UnlearnConfig
    from takedowns.services.unlearning import claim_run, run_dir

    request = data_remediated(trained, client_as)
    config = {"steps": 12, "eval_every": 4, "learning_rate": 5e-4, "retain_documents": 40}
    answer = client_as("curator").post(f"/api/v1/takedowns/{request.pk}/remediate-models/", {
        "methods": ["graddiff"], "config": {"graddiff": config}}, format="json")
    run = UnlearningRun.objects.get(pk=answer.json()[0]["id"])
    with job_lock("unlearning", run.pk):
        assert claim_run(run.pk) is not None  # the first delivery starts ...
    sets = verification_sets(trained["checkpoint"], run.forget_documents, 40)

    def killed_at_step_8(progress: lm.Progress) -> bool:
        if progress.step == 8:
            raise SystemExit("worker killed")  # ... and dies once step 8 is saved
        return True

    with pytest.raises(SystemExit):
        unlearning.unlearn(Path(trained["checkpoint"].local_path), sets.forget, sets.retain,
                           "graddiff", UnlearnConfig.from_dict(config), run_dir(run.pk),
                           on_progress=killed_at_step_8)
    assert UnlearningRun.objects.get(pk=run.pk).state == "running"
    saved = {p.name: p.stat().st_mtime_ns for p in (run_dir(run.pk) / "candidates").iterdir()}
    assert sorted(saved) == ["step-00004", "step-00008"]
    done = unlearning_run_execute(run_id=run.pk)  # the redelivered task
    assert done.state == "succeeded", done.error
    assert [c["step"] for c in done.candidates] == [4, 8, 12] and done.position == 12
    kept = {p.name: p.stat().st_mtime_ns for p in (run_dir(run.pk) / "candidates").iterdir()}
    assert {k: kept[k] for k in saved} == saved  # resumed at step 8, not started again
    assert done.resumed_at == [8]


def test_a_model_unlearned_for_an_earlier_request_is_in_scope_of_a_later_one(trained):
    from takedowns.services.unlearning import affected_checkpoints, method_config, origin_run

    original = trained["checkpoint"]
    unlearned = ModelCheckpoint.objects.create(
        name="unlearned", kind="unlearned", parent=original, version=trained["version"],
        path=original.path, sha256="0" * 64)
    documents = set(trained["version"].members.values_list("document_id", flat=True)[:3])
    assert {c.pk for c in affected_checkpoints(documents)} == {original.pk, unlearned.pk}
    assert origin_run(unlearned) == original.run
    assert method_config("retrain", unlearned, {})["n_embd"] == MODEL["n_embd"]
    sets = verification_sets(unlearned, sorted(documents), 5)
    assert len(sets.forget) == 3 and sets.forget == verification_sets(
        original, sorted(documents), 5).forget  # the text as the family was trained on it


def test_the_decision_e_mail_calls_a_retrain_exact_and_says_what_privleak_is_against():
    """The claimant was told "retrain inconclusive; privleak +37.1": a figure against chance,
    about a model that never saw the work."""
    from takedowns.services.decision import notice_text

    line = {"checkpoint": "demo-model", "state": "succeeded", "result": None,
            "chosen_step": None, "mia_auc": 0.7, "privleak": 37.1, "privleak_interval": None,
            "verbatim_rouge_l": None, "canary_p": None, "retain_perplexity_ratio": 1.0,
            "compute_seconds": 60}
    notice = {"removed": {"documents": 3, "text_purged": False, "versions": []},
              "found": {"by_method": {"exact": 3}, "confirmed": 3, "dismissed": 0},
              "models": [{**line, "method": "Full retrain on the remediated version",
                          "verdict": "exact", "privleak_reference": "chance (no retrain)",
                          "by_construction": "trained from scratch on demo@v3, which holds "
                                             "none of the removed documents"},
                         {**line, "method": "Negative preference optimisation (unlearning)",
                          "verdict": "inconclusive", "by_construction": None,
                          "privleak_reference": "chance (no retrain)"}],
              "verification": {"verdict": "pass", "separable": {"1": True}}}
    text = "\n".join(notice_text(notice))
    assert "Full retrain on the remediated version, exact: trained from scratch" in text
    retrain_line = next(x for x in text.splitlines() if "Full retrain" in x)
    assert "privleak" not in retrain_line and "inconclusive" not in retrain_line
    assert "privleak +37.1 (how much better it tells your documents from unseen ones than " \
           "chance, as no retrained model was measured; 0 is no difference)" in text
