"""The answer pages: ask a question of a datastore and a checkpoint, watch the answer's job, read
what each passage and source contributed, and the per-period shares (CSV too). The form goes
through the API's input serializer and retrieval's service, as POST /api/v1/rag/answers/ does."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render

from core.permissions import Capability, require
from dashboards import selectors
from provenance.models import User

FORM_FIELDS = ("question", "datastore", "checkpoint", "k", "mode")


@login_required
def answers(request: HttpRequest) -> HttpResponse:
    context = selectors.answers_context(request.user)
    if request.method != "POST":
        return render(request, "dashboards/answers.html", context)
    from retrieval import serializers as s
    from retrieval.services.answers import answer_create

    actor = request.user
    assert isinstance(actor, User)  # login_required
    require(actor, Capability.GENERATE, "your role cannot ask for answers")
    form = {f: request.POST[f] for f in FORM_FIELDS if request.POST.get(f, "") != ""}
    try:
        answer = answer_create(actor=actor, **_valid(s.AnswerIn, form, request))
    except ValidationError as exc:
        context.update(form=form, form_error=_said(exc))
        return render(request, "dashboards/answers.html", context, status=400)
    return redirect(f"/answers/{answer.pk}/")


@login_required
def answer_detail(request: HttpRequest, answer_id: int) -> HttpResponse:
    context = selectors.answer_context(request.user, answer_id)
    if context is None:
        raise Http404("no such answer")
    return render(request, "dashboards/answer.html", context)


def _valid(serializer_class: type[Any], data: Any, request: HttpRequest) -> dict[str, Any]:
    """The API's input serializer applied to a form or query string, so that the pages accept
    exactly what the API does; its errors become a ValidationError naming each field."""
    serializer = serializer_class(data=data, context={"request": request})
    if not serializer.is_valid():
        raise ValidationError({f: [str(m) for m in errors]
                               for f, errors in serializer.errors.items()})
    return dict(serializer.validated_data)


def _said(exc: ValidationError) -> str:
    return "; ".join(f"{field}: {' '.join(messages)}"
                     for field, messages in exc.message_dict.items())


def _query(request: HttpRequest) -> dict[str, Any]:
    from retrieval import serializers as s

    # an empty date box (or period) is left out, as the API leaves out a missing parameter
    return _valid(s.SharesIn, {k: v for k, v in request.GET.items() if v != ""}, request)


@login_required
def shares(request: HttpRequest) -> HttpResponse:
    try:
        query = _query(request)
    except ValidationError as exc:
        context = selectors.shares_context(request.user)
        context["form_error"] = _said(exc)
        return render(request, "dashboards/shares.html", context, status=400)
    return render(request, "dashboards/shares.html",
                  selectors.shares_context(request.user, **query))


@login_required
def shares_csv(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    from dashboards.exports import as_csv

    try:
        query = _query(request)
    except ValidationError as exc:
        return HttpResponse(_said(exc), status=400, content_type="text/plain; charset=utf-8")
    rows = selectors.shares_context(request.user, **query)["rows"]
    response = StreamingHttpResponse(as_csv(rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = \
        f'attachment; filename="trailmark-answer-shares-{query["period"]}.csv"'
    return response
