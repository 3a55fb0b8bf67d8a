"""The synthesis pages: recent synthesis and label jobs, and one job with its live progress,
its source, its generator and the first records (prompt, seed, label, the document written)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from core.permissions import Capability, require

RECORDS_SHOWN = 50


@login_required
def synthesis_jobs(request: HttpRequest) -> HttpResponse:
    from provenance.models import SynthesisJob

    require(request.user, Capability.READ_ALL)
    jobs = list(SynthesisJob.objects.select_related("checkpoint", "source", "pool_version__dataset")
                .order_by("-id")[:200])
    return render(request, "dashboards/synthesis_jobs.html", {"jobs": jobs})


@login_required
def synthesis_job(request: HttpRequest, job_id: int) -> HttpResponse:
    from provenance.models import SynthesisJob

    require(request.user, Capability.READ_ALL)
    job = (SynthesisJob.objects.select_related("checkpoint__version__dataset", "source",
                                               "pool_version__dataset")
           .filter(pk=job_id).first())
    if job is None:
        raise Http404("no such synthesis job")
    records = list(job.records.select_related("document").order_by("index")[:RECORDS_SHOWN])
    return render(request, "dashboards/synthesis_job.html",
                  {"job": job, "records": records, "shown": RECORDS_SHOWN})
