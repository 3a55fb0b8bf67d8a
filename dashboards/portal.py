"""The rights-holder portal: file a takedown request, follow it, answer what it lacks, withdraw
it. Every write goes through takedowns.services, as the API's do."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render

from core.errors import InvalidTransition, QuotaExceeded
from core.permissions import Capability, can, require
from provenance.models import User
from takedowns import serializers as s
from takedowns.models import TakedownRequest, UnlearningRun
from takedowns.selectors import event_actor, takedown_list
from takedowns.services.requests import REQUEST_FIELDS
from takedowns.services.workflow import STEP_CAPABILITIES, TRANSITIONS

CHOICE_FIELDS = ["legal_basis", "remedy", "authority", "ground"]
TEXT_FIELDS = sorted(REQUEST_FIELDS - {*CHOICE_FIELDS, "statements"})
STATEMENTS = [("good_faith", "I have a good-faith belief that the use is not authorised by the "
                             "owner, its agent or the law (DMCA)"),
              ("accuracy", "The information in this notice is accurate (DMCA)"),
              ("authority_under_perjury", "Under penalty of perjury, I am the owner or authorised "
                                          "to act for the owner (DMCA)"),
              ("bona_fide", "I believe in good faith that this notice is accurate and complete "
                            "(DSA)")]


def _messages(detail: Any, prefix: str = "") -> list[str]:
    """A serializer's nested errors as lines that name where: "item 2, urls item 1: Enter a
    valid URL." (lists count from 1)."""
    def at(key: Any) -> str:
        name = f"item {key + 1}" if isinstance(key, int) else str(key)
        return f"{prefix}, {name}" if prefix else name

    if isinstance(detail, dict):
        return [m for key, value in detail.items() for m in _messages(value, at(key))]
    if isinstance(detail, list) and detail and not all(isinstance(d, str) for d in detail):
        return [m for n, value in enumerate(detail) if value for m in _messages(value, at(n))]
    items = detail if isinstance(detail, list) else [detail]
    return [f"{prefix}: {item}" if prefix else str(item) for item in items]


def _valid(serializer_class: type[Any], data: dict[str, Any], plain: bool = False) -> Any:
    """The API's input serializer applied to a form's data, so the pages accept exactly what the
    API does (lengths, URLs, the number of works, no NUL characters); its errors become the
    form's, each field's messages naming the item they are about."""
    serializer = serializer_class(data=data)
    if not serializer.is_valid():
        raise ValidationError({field: _messages(errors)
                               for field, errors in serializer.errors.items()})
    return s.plain(serializer.validated_data) if plain else serializer.validated_data


def _lines(value: str) -> list[str]:
    return [line.strip() for line in value.splitlines() if line.strip()]


def _from_form(post: Any, with_basis: bool) -> dict[str, Any]:
    """The service's input from the form: only what was filled in."""
    data: dict[str, Any] = {f: post.get(f, "").strip() for f in TEXT_FIELDS
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
    if not with_basis:  # a supplement may complete the works already named
        data["works"] = [*_work_edits(post), *data.get("works", [])]
        if not data["works"]:
            del data["works"]
    return data


_EDIT = re.compile(r"^work_(\d{1,18})_(urls|identifiers|sample)$")


def _work_edits(post: Any) -> list[dict[str, Any]]:
    """The supplement form's per-work fields (work_<id>_urls, ..._identifiers, ..._sample), as
    corrections of those works: only what was filled in."""
    edits: dict[int, dict[str, Any]] = {}
    for key, value in post.items():
        found = _EDIT.match(key)
        if found and value.strip():
            field = {"sample": "sample_text"}.get(found.group(2), found.group(2))
            edits.setdefault(int(found.group(1)), {})[field] = \
                value if field == "sample_text" else _lines(value)
    return [{"id": pk, **fields} for pk, fields in sorted(edits.items())]


MAX_WORK_FILES = 20
MAX_WORK_FILE_BYTES = 2 * 1024 * 1024
TEXT_SUFFIXES = (".txt", ".md", ".html", ".htm", ".csv", ".json", ".xml", ".rst", ".tex")


def _uploaded_works(files: Any, title: str) -> list[dict[str, Any]]:
    """One work per uploaded text file: its text is the sample scoping searches for."""
    uploads = files.getlist("work_files")
    if len(uploads) > MAX_WORK_FILES:
        raise ValidationError({"work_files": f"at most {MAX_WORK_FILES} files"})
    works = []
    for upload in uploads:
        name = upload.name[:200]
        if not name.lower().endswith(TEXT_SUFFIXES):
            raise ValidationError({"work_files": f"{name}: only text files "
                                                 f"({', '.join(TEXT_SUFFIXES)})"})
        if upload.size > MAX_WORK_FILE_BYTES:
            raise ValidationError({"work_files": f"{name}: larger than 2 MB"})
        try:
            text = upload.read().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ValidationError({"work_files": f"{name}: not UTF-8 text"}) from None
        if not text.strip():
            raise ValidationError({"work_files": f"{name}: the file is empty"})
        works.append({"title": title or name, "identifiers": [f"file:{name}"],
                      "sample_text": text})
    return works


def _with_files(data: dict[str, Any], request: HttpRequest) -> dict[str, Any]:
    uploaded = _uploaded_works(request.FILES, request.POST.get("work_title", "").strip())
    if uploaded:
        # A title typed with files names the files' works, not a work of its own.
        first = data.get("works", [])
        if first and not (first[0]["urls"] or first[0]["identifiers"]
                          or first[0]["sample_text"].strip()):
            first = []
        data["works"] = first + uploaded
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
    require(actor, Capability.FILE_TAKEDOWN, "your role does not file takedown requests")
    return actor


@login_required
def takedowns(request: HttpRequest) -> HttpResponse:
    rows = takedown_list(request.user).prefetch_related(None).only(
        "id", "reference", "state", "legal_basis", "received_at", "deadlines",
        "overdue_since")
    return render(request, "dashboards/takedowns.html",
                  {"requests": rows, "can_file": can(request.user, Capability.FILE_TAKEDOWN)})


@login_required
def takedown_new(request: HttpRequest) -> HttpResponse:
    actor = _actor(request)
    if request.method == "POST":
        from takedowns.services.requests import takedown_file

        try:
            filed = takedown_file(actor=actor, data=_valid(s.TakedownIn, _with_files(
                _from_form(request.POST, with_basis=True), request), plain=True))
        except ValidationError as exc:
            return render(request, "dashboards/takedown_new.html",
                          _form_context(request.POST, exc), status=400)
        except QuotaExceeded as exc:
            page = render(request, "dashboards/takedown_new.html",
                          _form_context(request.POST, ValidationError(str(exc))), status=429)
            page["Retry-After"] = str(exc.retry_after)
            return page
        return redirect(f"/takedowns/{filed.pk}/")
    return render(request, "dashboards/takedown_new.html", _form_context())


def _detail_context(user: Any, found: TakedownRequest, query: str = "") -> dict[str, Any]:
    staff = can(user, Capability.MOVE_TAKEDOWN)
    runs = list(found.unlearning_runs.select_related("checkpoint", "result").order_by("pk"))
    events = list(found.events.select_related("actor"))
    for event in events:
        event.shown_actor = event_actor(event.actor, user)  # type: ignore[attr-defined]
    return {**_form_context(), "takedown": found, "works": found.works.all(),
            "events": events,
            "is_claimant": can(user, Capability.FILE_TAKEDOWN), "is_staff": staff,
            "next_states": sorted(TRANSITIONS.get(found.state, set()) - {"withdrawn"}),
            "matches": found.matches.select_related("document").order_by("document_id", "method")
            if staff and found.state == TakedownRequest.State.SCOPING else [],
            "runs": runs, "active": any(r.state in ("queued", "running") for r in runs),
            "methods": UnlearningRun.Method.choices,
            "certificate": found.verification or {},
            "can_withdraw": TakedownRequest.State.WITHDRAWN in TRANSITIONS.get(found.state,
                                                                               set()),
            **_scope_search(found, staff, query)}


def _scope_search(found: TakedownRequest, staff: bool, query: str) -> dict[str, Any]:
    """A curator's search of the corpus for documents to add to the scope (`?find=`)."""
    from takedowns.services.scoping import takedown_scope_search

    if not (staff and query and found.state == TakedownRequest.State.SCOPING):
        return {"find": query}
    try:
        return {"find": query, "found_documents": takedown_scope_search(query)}
    except ValidationError as exc:
        return {"find": query, "find_error": "; ".join(exc.messages)}


def _withdraw(found: TakedownRequest, actor: User, request: HttpRequest) -> None:
    from takedowns.services.requests import takedown_withdraw

    reason = _valid(s.TakedownWithdrawIn, {"reason": request.POST.get("reason", "")})
    takedown_withdraw(request=found, actor=actor, reason=reason.get("reason", ""))


def _supplement(found: TakedownRequest, actor: User, request: HttpRequest) -> None:
    from takedowns.services.requests import takedown_supplement

    takedown_supplement(request=found, actor=actor, data=_valid(
        s.TakedownFields, _with_files(_from_form(request.POST, with_basis=False), request),
        plain=True))


def _decide(found: TakedownRequest, actor: User, request: HttpRequest) -> None:
    from takedowns.services.requests import takedown_decide

    post = request.POST
    decision = _valid(s.TakedownDecisionIn, {"to": post.get("to", ""),
                                              "reasons": post.get("reasons", "")})
    takedown_decide(request=found, actor=actor, to=decision["to"],
                    reasons=decision.get("reasons", ""))


def _scope(found: TakedownRequest, actor: User, request: HttpRequest) -> None:
    from takedowns.services.scoping import takedown_scope_start

    takedown_scope_start(request=found, actor=actor)


def _review_scope(found: TakedownRequest, actor: User, request: HttpRequest) -> None:
    from takedowns.services.scoping import takedown_scope_review

    picked = {k.removeprefix("doc_"): v for k, v in request.POST.items() if k.startswith("doc_")}
    review = _valid(s.ScopeReviewIn, {
        "confirm": [d for d, v in picked.items() if v == "confirm"],
        "dismiss": [d for d, v in picked.items() if v == "dismiss"]})
    takedown_scope_review(request=found, actor=actor, confirm=review.get("confirm", []),
                          dismiss=review.get("dismiss", []))


def _add_to_scope(found: TakedownRequest, actor: User, request: HttpRequest) -> None:
    from takedowns.services.scoping import takedown_scope_add

    ids = [part.strip() for part in request.POST.get("documents", "").replace(",", " ").split()]
    added = _valid(s.ScopeAddIn, {"documents": ids, "reason": request.POST.get("note", "")})
    takedown_scope_add(request=found, actor=actor, documents=added["documents"],
                       reason=added["reason"])


def _remediate_data(found: TakedownRequest, actor: User, request: HttpRequest) -> None:
    from takedowns.services.remediation import takedown_remediate_data

    takedown_remediate_data(request=found, actor=actor,
                            purge_text=True if request.POST.get("purge_text") else None,
                            descendants=bool(request.POST.get("descendants")))


def _remediate_models(found: TakedownRequest, actor: User, request: HttpRequest) -> None:
    from takedowns.services.unlearning import takedown_remediate_models

    takedown_remediate_models(request=found, actor=actor, methods=request.POST.getlist("methods"))


def _cancel_run(found: TakedownRequest, actor: User, request: HttpRequest) -> None:
    from takedowns.services.unlearning import unlearning_run_cancel

    run_id = _valid(s.CancelRunIn, {"run": request.POST.get("run", "")})["run"]
    run = found.unlearning_runs.filter(pk=run_id).first()
    if run is None:
        raise ValidationError({"run": "no such run on this request"})
    unlearning_run_cancel(run=run, actor=actor)


def _verify(found: TakedownRequest, actor: User, request: HttpRequest) -> None:
    from takedowns.services.verification import takedown_verify_start

    takedown_verify_start(request=found, actor=actor)


# Every form on a request's page: its `action`, the API step whose capability it needs
# (takedowns.services.workflow.STEP_CAPABILITIES) and the service call, the API's own.
ACTIONS: dict[str, tuple[str, Callable[[TakedownRequest, User, HttpRequest], None]]] = {
    "withdraw": ("withdraw", _withdraw), "supplement": ("supplement", _supplement),
    "decide": ("decide", _decide), "scope": ("scope", _scope),
    "review": ("review_scope", _review_scope), "add_to_scope": ("add_to_scope", _add_to_scope),
    "remediate_data": ("remediate_data", _remediate_data),
    "remediate_models": ("remediate_models", _remediate_models),
    "cancel_run": ("cancel_run", _cancel_run), "verify": ("verify", _verify),
}
REFUSED = {Capability.FILE_TAKEDOWN: "your role does not file takedown requests",
           Capability.MOVE_TAKEDOWN: "only curators and admins move a request along"}


def _take_step(found: TakedownRequest, actor: User, request: HttpRequest) -> None:
    """One step asked for from the page, checked and taken as the API would."""
    action = request.POST.get("action", "")
    step, run = ACTIONS.get(action, ("", None))
    needed = STEP_CAPABILITIES.get(step, Capability.MOVE_TAKEDOWN)
    require(actor, needed, REFUSED[needed])
    if run is None:
        raise ValidationError({"action": f"unknown action {action!r}"})
    run(found, actor, request)


@login_required
def takedown_detail(request: HttpRequest, takedown_id: int) -> HttpResponse:
    found = takedown_list(request.user).filter(pk=takedown_id).first()
    if found is None:
        raise Http404("no such takedown request")
    context = _detail_context(request.user, found, request.GET.get("find", "").strip()[:500])
    if request.method == "POST":
        actor = request.user
        assert isinstance(actor, User)  # login_required
        try:
            _take_step(found, actor, request)
        except ValidationError as exc:
            context |= _form_context(request.POST, exc)
            return render(request, "dashboards/takedown.html", context, status=400)
        except InvalidTransition as exc:
            context |= _form_context(request.POST, ValidationError(str(exc)))
            return render(request, "dashboards/takedown.html", context, status=409)
        return redirect(request.path)
    return render(request, "dashboards/takedown.html", context)


@login_required
def takedown_receipt(request: HttpRequest, takedown_id: int) -> HttpResponse:
    """The receipt as a file to keep (the same JSON as the API's)."""
    from takedowns.services.decision import takedown_receipt as receipt_of

    found = takedown_list(request.user).filter(pk=takedown_id).first()
    receipt = receipt_of(found) if found is not None else None
    if found is None or receipt is None:
        raise Http404("no receipt for this request")
    response = JsonResponse(receipt, json_dumps_params={"indent": 2})
    response["Content-Disposition"] = f'attachment; filename="{found.reference}-receipt.json"'
    return response
