"""Read-only pages. The full dashboards and transparency site grow here."""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import redirect, render

from dashboards import selectors
from provenance.models import User


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "dashboards/home.html", selectors.home_context(request.user))


def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse(selectors.health())


@login_required
def runs(request: HttpRequest) -> HttpResponse:
    return render(request, "dashboards/runs.html", selectors.models_context(request.user))


@login_required
def run_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    run = selectors.training_run(request.user, run_id)
    if run is None:
        raise Http404("no such training run")
    return render(request, "dashboards/run.html",
                  {"run": run, "config_json": json.dumps(run.config, indent=2)})


@login_required
def checkpoint_detail(request: HttpRequest, checkpoint_id: int) -> HttpResponse:
    context = selectors.checkpoint_context(request.user, checkpoint_id)
    if context is None:
        raise Http404("no such checkpoint")
    if request.method == "POST":
        # A generation asked for from the page: queued on the gpu queue, shown when done.
        from attribution.services.outputs import model_output_create
        from core.permissions import Capability, require

        actor = request.user
        assert isinstance(actor, User)  # login_required
        require(actor, Capability.GENERATE, "your role cannot generate")
        try:
            model_output_create(checkpoint=context["checkpoint"], actor=actor,
                                prompt=request.POST.get("prompt", "")[:20_000])
        except ValidationError as exc:
            context["form_error"] = "; ".join(exc.messages)
            return render(request, "dashboards/checkpoint.html", context, status=400)
        return redirect(request.path)
    return render(request, "dashboards/checkpoint.html", context)


@login_required
def watermark_check(request: HttpRequest) -> HttpResponse:
    from provenance.engine.watermark import MAX_TEXT_CHARS
    from provenance.services.watermarks import TRUST, watermark_detect

    text = request.POST.get("text", "")[:MAX_TEXT_CHARS] if request.method == "POST" else ""
    result = watermark_detect(text=text, user=request.user) if text else None
    return render(request, "dashboards/watermarks.html",
                  {"text": text, "result": result, "trust": TRUST})


@login_required
def source_detail(request: HttpRequest, source_id: int) -> HttpResponse:
    context = selectors.source_context(request.user, source_id)
    if context is None:
        raise Http404("no such source")
    return render(request, "dashboards/source.html", context)


@login_required
def output_detail(request: HttpRequest, output_id: int) -> HttpResponse:
    """A model output, its attribution runs, and a button that starts one."""
    context = selectors.output_context(request.user, output_id)
    if context is None:
        raise Http404("no such output")
    if request.method == "POST":
        from attribution.services.runs import attribution_run_create
        from core.permissions import Capability, require

        actor = request.user
        assert isinstance(actor, User)  # login_required
        require(actor, Capability.START_ATTRIBUTION, "your role cannot start attribution")
        methods = request.POST.getlist("methods") or None
        try:
            run = attribution_run_create(output=context["output"], actor=actor, methods=methods)
        except ValidationError as exc:
            context["form_error"] = "; ".join(exc.messages)
            return render(request, "dashboards/output.html", context, status=400)
        return redirect(f"/attribution/{run.pk}/")
    return render(request, "dashboards/output.html", context)


@login_required
def attribution_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    """An attribution run: live progress while it works, the report when it is done."""
    context = selectors.attribution_context(request.user, run_id)
    if context is None:
        raise Http404("no such attribution run")
    return render(request, "dashboards/attribution.html", context)


def _checkpoint_or_404(checkpoint_id: int) -> Any:
    from provenance.models import ModelCheckpoint

    checkpoint = ModelCheckpoint.objects.select_related("version__dataset", "parent").filter(
        pk=checkpoint_id).first()
    if checkpoint is None:
        raise Http404("no such model")
    return checkpoint


def ai_act_summary(request: HttpRequest, checkpoint_id: int) -> HttpResponse:
    """Public: a model's EU AI Act training-content summary (Art. 53(1)(d))."""
    from dashboards.engine.ai_act import LABELS

    summary = selectors.ai_act_summary(_checkpoint_or_404(checkpoint_id))
    groups = [(LABELS[kind], members, share) for kind, members, share in summary.by_type()]
    return render(request, "dashboards/ai_act.html", {
        "summary": summary, "groups": groups, "domains": summary.top_domains(),
        "checkpoint_id": checkpoint_id,
        "documents": sum(s.documents for s in summary.sources)})


def ai_act_summary_pdf(request: HttpRequest, checkpoint_id: int) -> HttpResponse:
    from dashboards.engine.ai_act import summary_pdf

    checkpoint = _checkpoint_or_404(checkpoint_id)
    response = HttpResponse(summary_pdf(selectors.ai_act_summary(checkpoint)),
                            content_type="application/pdf")
    response["Content-Disposition"] = \
        f'attachment; filename="{checkpoint.name}-training-content-summary.pdf"'
    return response


def version_page(request: HttpRequest, slug: str, number: int) -> HttpResponse:
    """Public: a published version, its composition, lineage and cards. Researchers and staff
    publish its cards from here (one action, recorded in the ledger)."""
    from core.permissions import Capability, can

    context = selectors.version_page(slug, number)
    if context is None:
        raise Http404("no such published version")
    writer = can(request.user, Capability.PUBLISH_CARDS)
    if request.method == "POST":
        if not writer:
            raise PermissionDenied("only researchers and staff publish cards")
        from core.errors import InvalidTransition
        from dashboards.services import version_card_publish

        assert isinstance(request.user, User)  # a writer is signed in
        try:
            version_card_publish(version=context["version"], actor=request.user)
        except InvalidTransition as exc:
            context["form_error"] = str(exc)
            return render(request, "dashboards/version.html", {**context, "writer": writer},
                          status=409)
        return redirect(request.path)
    return render(request, "dashboards/version.html", {**context, "writer": writer})


def model_page(request: HttpRequest, checkpoint_id: int) -> HttpResponse:
    """Public: a model's card, the same facts as the Hugging Face README it downloads as."""
    checkpoint = _checkpoint_or_404(checkpoint_id)
    return render(request, "dashboards/model.html", {
        "checkpoint": checkpoint, "facts": selectors.checkpoint_facts(checkpoint)})


def transparency(request: HttpRequest) -> HttpResponse:
    """Public: takedown statistics, the ledger's latest checkpoint, versions and models."""
    return render(request, "dashboards/transparency.html", selectors.transparency())


@login_required
def staff(request: HttpRequest) -> HttpResponse:
    """Curators and admins: sources, live job progress, due takedowns, attribution runs.
    `?part=jobs` is the jobs section alone, which the page polls while jobs run."""
    from core.permissions import Capability, require

    require(request.user, Capability.OPERATE, "for curators and admins")
    if request.GET.get("part") == "jobs":
        return render(request, "dashboards/_jobs.html", {"jobs": selectors.jobs_board()})
    return render(request, "dashboards/staff.html", selectors.staff_context())


def _auditor(request: HttpRequest) -> None:
    from core.permissions import Capability, require

    require(request.user, Capability.AUDIT, "for auditors and staff")


@login_required
def audit(request: HttpRequest) -> HttpResponse:
    """Auditors: the ledger verified on request, attribution reports, exports."""
    _auditor(request)
    context = selectors.audit_context()
    if request.method == "POST":
        from provenance.ledger.proofs import ledger_audit

        context["audit"] = ledger_audit()
    return render(request, "dashboards/audit.html", context)


@login_required
def audit_export(request: HttpRequest, what: str, fmt: str) -> StreamingHttpResponse:
    from dashboards import exports

    _auditor(request)
    if what not in exports.EXPORTS:
        raise Http404("no such export")
    body = exports.as_csv(exports.rows(what)) if fmt == "csv" else \
        exports.as_json(exports.rows(what))
    response = StreamingHttpResponse(body, content_type="text/csv; charset=utf-8"
                                     if fmt == "csv" else "application/json")
    response["Content-Disposition"] = f'attachment; filename="trailmark-{what}.{fmt}"'
    return response


@login_required
def datastores(request: HttpRequest) -> HttpResponse:
    return render(request, "dashboards/datastores.html",
                  selectors.datastores_context(request.user))


@login_required
def datastore_detail(request: HttpRequest, datastore_id: int) -> HttpResponse:
    query = request.GET.get("q", "").strip()[:2000]
    context = selectors.datastore_context(request.user, datastore_id, query)
    if context is None:
        raise Http404("no such datastore")
    return render(request, "dashboards/datastore.html", context)
