"""The rights-holder portal: file a takedown request, follow it, answer what it lacks, withdraw
it. Every write goes through takedowns.services, as the API's do."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from provenance.models import User
from provenance.permissions import STAFF, Role, role_of
from provenance.services.errors import InvalidTransition
from takedowns.models import TakedownRequest
from takedowns.selectors import takedown_list
from takedowns.services.requests import REQUEST_FIELDS, TRANSITIONS

FILERS = STAFF | {Role.RIGHTS_HOLDER}
CHOICE_FIELDS = ["legal_basis", "remedy", "authority", "ground"]
TEXT_FIELDS = sorted(REQUEST_FIELDS - {*CHOICE_FIELDS, "statements"})
STATEMENTS = [("good_faith", "I have a good-faith belief that the use is not authorised by the "
                             "owner, its agent or the law (DMCA)"),
              ("accuracy", "The information in this notice is accurate (DMCA)"),
              ("authority_under_perjury", "Under penalty of perjury, I am the owner or authorised "
                                          "to act for the owner (DMCA)"),
              ("bona_fide", "I believe in good faith that this notice is accurate and complete "
                            "(DSA)")]


def _lines(value: str) -> list[str]:
    return [line.strip() for line in value.splitlines() if line.strip()]


def _from_form(post: Any, with_basis: bool) -> dict[str, Any]:
    """The service's input from the form: only what was filled in."""
    data: dict[str, Any] = {f: post.get(f, "").strip()[:20_000] for f in TEXT_FIELDS
                            if post.get(f, "").strip()}
    data |= {f: post[f] for f in CHOICE_FIELDS if post.get(f)
             and (with_basis or f != "legal_basis")}
    statements = {key: True for key, _ in STATEMENTS if post.get(f"statement_{key}")}
    if statements:
        data["statements"] = statements
    work = {"title": post.get("work_title", "").strip(),
            "urls": _lines(post.get("work_urls", "")),
            "identifiers": _lines(post.get("work_identifiers", "")),
            "sample_text": post.get("work_sample", "")}
    if any(work.values()):
        data["works"] = [work]
    return data


def _form_context(post: Any = None, error: ValidationError | None = None) -> dict[str, Any]:
    return {"bases": TakedownRequest.Basis.choices, "remedies": TakedownRequest.Remedy.choices,
            "authorities": TakedownRequest.Authority.choices, "statements": STATEMENTS,
            "grounds": "abcdef", "values": post or {},
            "errors": (error.message_dict if hasattr(error, "error_dict") else
                       {"form": error.messages}) if error else {}}


def _actor(request: HttpRequest) -> User:
    actor = request.user
    assert isinstance(actor, User)  # login_required
    if role_of(actor) not in FILERS:
        raise PermissionDenied("your role does not file takedown requests")
    return actor


@login_required
def takedowns(request: HttpRequest) -> HttpResponse:
    rows = takedown_list(request.user).prefetch_related(None).only(
        "id", "reference", "state", "legal_basis", "received_at", "deadlines",
        "overdue_since")
    return render(request, "dashboards/takedowns.html",
                  {"requests": rows, "can_file": role_of(request.user) in FILERS})


@login_required
def takedown_new(request: HttpRequest) -> HttpResponse:
    actor = _actor(request)
    if request.method == "POST":
        from takedowns.services.requests import takedown_file

        try:
            filed = takedown_file(actor=actor, data=_from_form(request.POST, with_basis=True))
        except ValidationError as exc:
            return render(request, "dashboards/takedown_new.html",
                          _form_context(request.POST, exc), status=400)
        return redirect(f"/takedowns/{filed.pk}/")
    return render(request, "dashboards/takedown_new.html", _form_context())


@login_required
def takedown_detail(request: HttpRequest, takedown_id: int) -> HttpResponse:
    found = takedown_list(request.user).filter(pk=takedown_id).first()
    if found is None:
        raise Http404("no such takedown request")
    context = {**_form_context(), "takedown": found, "works": found.works.all(),
               "events": found.events.select_related("actor"),
               "is_claimant": role_of(request.user) in FILERS,
               "can_withdraw": TakedownRequest.State.WITHDRAWN in TRANSITIONS.get(found.state,
                                                                                  set())}
    if request.method == "POST":
        from takedowns.services.requests import takedown_supplement, takedown_withdraw

        actor = _actor(request)
        try:
            if request.POST.get("action") == "withdraw":
                takedown_withdraw(request=found, actor=actor,
                                  reason=request.POST.get("reason", "")[:5000])
            else:
                takedown_supplement(request=found, actor=actor,
                                    data=_from_form(request.POST, with_basis=False))
        except ValidationError as exc:
            context |= _form_context(request.POST, exc)
            return render(request, "dashboards/takedown.html", context, status=400)
        except InvalidTransition as exc:
            context |= _form_context(request.POST, ValidationError(str(exc)))
            return render(request, "dashboards/takedown.html", context, status=409)
        return redirect(request.path)
    return render(request, "dashboards/takedown.html", context)
