"""The decision notice and the receipt.

When a request is decided, the claimant gets a notice: what scoping found, what was removed,
which models were remediated and how, the verification results, and a receipt: the decision's
ledger entry (which carries the notice's hash) with a proof of its inclusion in the ledger's
Merkle tree. Text purges that waited for model remediation happen here.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.utils import timezone

from provenance.ledger.proofs import ledger_receipt
from provenance.models import Document, LedgerEntry, ModelCheckpoint, User
from provenance.services.documents import document_purge
from takedowns.models import TakedownEvent, TakedownRequest, UnlearningRun

State = TakedownRequest.State
PROBE_NAMES = {"quantized_4bit": "after 4-bit weights", "relearned": "after relearning"}


def probe_verdicts(row: dict[str, Any]) -> dict[str, str] | None:
    """The robustness probes' verdicts of a certificate row (4-bit weights, relearning), or
    None where no candidate reached them."""
    probes = row.get("probes")
    return {kind: probe["verdict"] for kind, probe in probes.items()} if probes else None


def _model_line(run: UnlearningRun, inherited: dict[int, list[str]]) -> dict[str, Any]:
    row = run.certificate or {}
    summary = row.get("summary") or {}
    leak = (row.get("criteria") or {}).get("privleak", {})
    return {"checkpoint": run.checkpoint.name, "method": run.get_method_display(),
            "state": run.state, "verdict": run.verdict or None,
            "result": {"name": run.result.name, "sha256": run.result.sha256}
            if run.result else None,
            "grade": row.get("grade"),
            "chosen_step": row.get("chosen_step"), "chosen_on": row.get("chosen_on"),
            "certified_on": row.get("certified_on"),
            "probes": probe_verdicts(row),
            "by_construction": row.get("by_construction"),
            "mia_auc": summary.get("mia_auc_mink"), "privleak": leak.get("privleak"),
            "privleak_reference": leak.get("reference"),
            "privleak_interval": [leak["low"], leak["high"]] if "low" in leak else None,
            "verbatim_rouge_l": summary.get("verbatim_rouge_l"),
            "canary_p": summary.get("canary_p"),
            "canary_inherited_from": inherited.get(run.checkpoint_id, []),
            "retain_perplexity_ratio": (row.get("criteria") or {}).get(
                "retain_perplexity", {}).get("ratio"),
            "compute_seconds": run.seconds}


def _works(request: TakedownRequest, matches: list[Any]) -> dict[str, Any]:
    """Each work the claimant listed, and whether a confirmed document holds it: the notice
    says which works were not found instead of a bare count of documents."""
    found = {m.work_id for m in matches if m.confirmed is True and m.work_id is not None}
    works = list(request.works.order_by("pk").values("pk", "title"))
    missing = [{"id": w["pk"], "title": w["title"] or f"work {n}"}
               for n, w in enumerate(works, start=1) if w["pk"] not in found]
    return {"listed": len(works), "found": len(works) - len(missing), "not_found": missing}


def decision_notice(request: TakedownRequest) -> dict[str, Any]:
    matches = list(request.matches.all())
    remediation = request.scope.get("remediation", {})
    runs = request.unlearning_runs.select_related("checkpoint", "result").order_by("pk")
    verification = request.verification or {}
    teachers = {c["checkpoint"]: c.get("canary_inherited_from") or []
                for c in verification.get("checkpoints", [])}
    names = dict(ModelCheckpoint.objects.filter(
        pk__in={pk for ids in teachers.values() for pk in ids}).values_list("pk", "name"))
    inherited = {pk: [names.get(t, str(t)) for t in ids] for pk, ids in teachers.items()}
    return {
        "reference": request.reference,
        "legal_basis": request.get_legal_basis_display(),
        "decided_at": timezone.now().isoformat(),
        "found": {"by_method": dict(Counter(m.method for m in matches)),
                  "confirmed": len({m.document_id for m in matches if m.confirmed is True}),
                  "dismissed": len({m.document_id for m in matches if m.confirmed is False}),
                  "added_by_curator": len({m.document_id for m in matches
                                           if m.method == "curator"})},
        "works": _works(request, matches),
        "removed": {"documents": len(remediation.get("documents", [])),
                    "synthetic_documents": len(remediation.get("synthetic_documents", [])),
                    "text_purged": bool(remediation.get("purged")),
                    "versions": [{"version": v["version"],
                                  "removed": v["diff"]["removed"]["total"]}
                                 for v in remediation.get("versions", [])],
                    "gradient_indexes_masked": len(remediation.get("gradient_indexes", []))},
        "models": [_model_line(run, inherited) for run in runs],
        "output_filters": [{"checkpoint": f.checkpoint.name, "active": f.active}
                           for f in request.output_filters.select_related("checkpoint")],
        "verification": {"verdict": verification.get("verdict"),
                         "thresholds": verification.get("thresholds"),
                         "separable": {str(c["checkpoint"]): c["separability"]["separable"]
                                       for c in verification.get("checkpoints", [])}},
        "reasons": request.decision_reasons,
    }


def notice_text(notice: dict[str, Any]) -> list[str]:
    """The notice as lines of the decision e-mail."""
    removed, found = notice["removed"], notice["found"]
    lines = ["", "What we found: " + (", ".join(f"{n} by {method.replace('_', ' ')}"
                                               for method, n in found["by_method"].items())
                                     or "nothing"),
             f"Confirmed as your work: {found['confirmed']} document(s)"
             + (f", holding {notice['works']['found']} of the {notice['works']['listed']} "
                f"works you listed" if notice.get("works", {}).get("listed") else "") + "."]
    missing = notice.get("works", {}).get("not_found", [])
    if missing:
        lines.append(f"Not found in our data: {len(missing)} work(s): "
                     + "; ".join(f'"{w["title"]}"' for w in missing[:50])
                     + ("; ..." if len(missing) > 50 else "")
                     + ". Nothing was removed for them; reply with a URL, an identifier or a "
                       "longer sample of each and we will look again.")
    lines.append(f"Removed: {removed['documents']} document(s)"
                 + (f", and {removed['synthetic_documents']} synthetic document(s) that models "
                    f"trained on them wrote" if removed.get("synthetic_documents") else "")
                 + ("; their text was erased" if removed["text_purged"] else "") + ".")
    lines += [f"New dataset version without them: {v['version']}" for v in removed["versions"]]
    for model in notice["models"]:
        outcome = model["verdict"] or model["state"]
        if model.get("canary_inherited_from"):
            lines.append(f"Model {model['checkpoint']} never saw your work itself: it learned "
                         f"from text written by model(s) "
                         f"{', '.join(model['canary_inherited_from'])}, which trained on it; "
                         f"it was tested for your source's canary too.")
        if outcome == "exact":
            lines.append(f"Model {model['checkpoint']}: {model['method']}, exact: "
                         f"{model['by_construction'] or 'it never saw the work'}.")
            continue
        line = f"Model {model['checkpoint']}: {model['method']}, {outcome}"
        if model.get("grade"):
            line += f", graded {model['grade']}"
        if model.get("chosen_on") and model.get("chosen_step") is not None:
            line += (f" (step {model['chosen_step']} chosen on the {model['chosen_on']} split, "
                     f"figures from the {model.get('certified_on') or 'test'} split)")
        if model.get("probes"):
            line += "; robustness probes: " + ", ".join(
                f"{PROBE_NAMES.get(kind, kind)} {verdict}"
                for kind, verdict in model["probes"].items())
        if model["privleak"] is not None:
            # A figure against chance is no comparison with a model without the work: say so.
            versus = "a model retrained without the work" \
                if model.get("privleak_reference") == "retrain" else \
                "chance, as no retrained model was measured"
            line += (f"; privleak {model['privleak']:+.1f} (how much better it tells your "
                     f"documents from unseen ones than {versus}; 0 is no difference)")
        if model["verbatim_rouge_l"] is not None:
            line += f"; verbatim ROUGE-L {model['verbatim_rouge_l']:.3f}"
        if model["canary_p"] is not None:
            line += f"; canary p = {model['canary_p']:.3f}"

        if model["by_construction"]:
            line += f" ({model['by_construction']})"
        lines.append(line)
    if notice["verification"]["verdict"]:
        lines.append(f"Verification: {notice['verification']['verdict']}.")
    if not all(notice["verification"]["separable"].values()):
        lines.append("These measurements cannot tell the original model from one that never saw "
                     "the work (too few documents, or too little memorised), so they neither "
                     "confirm nor refute the removal; a retrained model holds none of the "
                     "documents by construction.")
    return lines


def purge_pending(request: TakedownRequest, actor: User | None) -> None:
    """Erase texts whose purge waited for model remediation and verification."""
    remediation = request.scope.get("remediation", {})
    if not remediation.get("purge_pending"):
        return
    reason = f"takedown {request.reference}: erasure after model remediation"
    for document in Document.objects.filter(pk__in=[*remediation.get("documents", []),
                                                    *remediation.get("synthetic_documents", [])],
                                            text_purged=False, removed_at__isnull=False):
        document_purge(document=document, actor=actor, reason=reason)
    request.scope = {**request.scope, "remediation": {**remediation, "purge_pending": False,
                                                      "purged": True}}
    request.save(update_fields=["scope", "updated_at"])


def takedown_receipt(request: TakedownRequest) -> dict[str, Any] | None:
    """The receipt of the decision (or of the latest state change before one)."""
    event = (TakedownEvent.objects.filter(request=request, to_state=State.DECIDED)
             .order_by("-at").first()
             or TakedownEvent.objects.filter(request=request).order_by("-at", "-id").first())
    if event is None or event.ledger_entry_id is None:
        return None
    entry = LedgerEntry.objects.get(pk=event.ledger_entry_id)
    return {"reference": request.reference, "state": event.to_state,
            **ledger_receipt(entry)}
