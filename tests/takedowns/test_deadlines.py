"""Overdue takedowns: found by the periodic check, flagged once, staff told once."""

from datetime import date, timedelta

import pytest
from django.core import mail

from provenance.models import LedgerEntry
from takedowns.services.deadlines import takedown_deadlines_check
from takedowns.services.requests import takedown_decide, takedown_file
from takedowns.tasks import takedown_deadlines_task

pytestmark = pytest.mark.django_db


def complete(**over):
    return {"legal_basis": "voluntary", "claimant_name": "Ann", "claimant_email": "a@a.example",
            "works": [{"title": "Tide", "sample_text": "the tide came in"}], **over}


def test_a_request_past_its_decision_deadline_is_flagged_and_staff_told_once(
        users, django_capture_on_commit_callbacks):
    for name in ("admin", "curator"):
        users[name].email = f"{name}@trailmark.example"
        users[name].save(update_fields=["email"])
    request = takedown_file(actor=users["holder_a"], data=complete())
    decide = date.fromisoformat(request.deadlines["decide"])
    assert takedown_deadlines_check(today=decide) == []  # due today is not late
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        late = takedown_deadlines_check(today=decide + timedelta(days=1))
    assert late == [request.reference]
    request.refresh_from_db()
    assert request.overdue_since == decide
    assert len(mail.outbox) == 1 and request.reference in mail.outbox[0].body
    assert set(mail.outbox[0].to) == {users["admin"].email, users["curator"].email}
    assert LedgerEntry.objects.filter(event="takedown.overdue").count() == 1
    assert takedown_deadlines_check(today=decide + timedelta(days=2)) == []  # told once
    takedown_decide(request=request, actor=users["curator"], to="rejected", reasons="no")
    takedown_deadlines_check(today=decide + timedelta(days=3))
    request.refresh_from_db()
    assert request.overdue_since == decide  # a closed request keeps its record


def test_waiting_for_the_claimant_stops_the_clock_and_the_task_runs_the_check(users):
    waiting = takedown_file(actor=users["holder_a"], data=complete(works=[]))
    assert waiting.state == "needs_info"
    running = takedown_file(actor=users["holder_a"], data=complete())
    running.deadlines = {"acknowledge": "2020-01-02", "decide": "2020-01-10"}
    running.save(update_fields=["deadlines"])
    waiting.deadlines = running.deadlines
    waiting.save(update_fields=["deadlines"])
    takedown_deadlines_task()
    running.refresh_from_db()
    waiting.refresh_from_db()
    assert running.overdue_since == date(2020, 1, 10) and waiting.overdue_since is None
