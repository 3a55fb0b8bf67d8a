"""Onboarding a rights-holder in one action, from the API or the admin: the holder and its first
user, who signs in with the password given or follows an e-mailed one-time invitation."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client

from provenance.models import LedgerEntry, RightsHolder, User

pytestmark = pytest.mark.django_db
URL = "/api/v1/rights-holders/onboard/"


def _invitation_path(message: str) -> str:
    return re.search(r"https?://[^/\s]+(/accounts/invitation/\S+/)", message).group(1)


def test_onboarding_by_invitation_creates_holder_and_user_who_chooses_a_password(
        client_as, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = client_as("curator").post(URL, {
            "name": "Lyric Press", "kind": "organisation", "contact_email": "legal@lyric.example",
            "username": "lyric", "email": "editor@lyric.example"}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["holder"]["name"] == "Lyric Press" and body["invited"] is True
    assert body["user"]["username"] == "lyric" and body["user"]["role"] == "rights_holder"
    user = User.objects.get(username="lyric")
    assert user.rights_holder == RightsHolder.objects.get(name="Lyric Press")
    assert not user.has_usable_password()
    (message,) = mail.outbox
    assert message.to == ["editor@lyric.example"] and "lyric" in message.body
    assert [e.event for e in LedgerEntry.objects.order_by("pk")][-2:] == [
        "rights_holder.created", "rights_holder.user_added"]

    browser = Client()
    page = browser.get(_invitation_path(message.body), follow=True)
    assert page.status_code == 200 and b"Choose your password" in page.content
    assert b"lyric" in page.content
    short = browser.post(page.redirect_chain[-1][0], {"new_password1": "abc",
                                                       "new_password2": "abc"})
    assert short.status_code == 200 and b"too short" in short.content
    done = browser.post(page.redirect_chain[-1][0], {"new_password1": "a-long-Passphrase-9",
                                                      "new_password2": "a-long-Passphrase-9"})
    assert done.status_code == 302 and done["Location"] == "/accounts/login/?invited=1"
    assert Client().login(username="lyric", password="a-long-Passphrase-9")
    # the link works once
    again = Client().get(_invitation_path(message.body), follow=True)
    assert b"not valid any more" in again.content


def test_onboarding_with_a_password_signs_in_at_once_and_refusals_keep_nothing(client_as):
    curator = client_as("curator")
    ok = curator.post(URL, {"name": "Solo Author", "kind": "person", "username": "solo",
                            "email": "solo@example.org", "password": "another-Long-pass-7"},
                      format="json")
    assert ok.status_code == 201 and ok.json()["invited"] is False
    assert Client().login(username="solo", password="another-Long-pass-7")
    assert not mail.outbox
    holders = RightsHolder.objects.count()
    taken = curator.post(URL, {"name": "Another", "username": "SOLO", "email": "a@example.org"},
                         format="json")
    assert taken.status_code == 400 and "username" in taken.json()
    weak = curator.post(URL, {"name": "Weak", "username": "weak", "email": "w@example.org",
                              "password": "123"}, format="json")
    assert weak.status_code == 400 and "password" in weak.json()
    same_name = curator.post(URL, {"name": "Solo Author", "username": "solo2",
                                   "email": "s@example.org"}, format="json")
    assert same_name.status_code == 400 and "name" in same_name.json()
    assert RightsHolder.objects.count() == holders  # nothing half-made
    assert not User.objects.filter(username__in=["weak", "solo2"]).exists()
    for who in ("holder_a", "auditor", "researcher"):
        assert client_as(who).post(URL, {"name": "X", "username": "x", "email": "x@e.org"},
                                   format="json").status_code == 403


def test_the_admins_add_rights_holder_onboards_in_one_form(users,
                                                          django_capture_on_commit_callbacks):
    admin = Client()
    admin.force_login(users["admin"])
    add = "/admin/provenance/rightsholder/add/"
    form = admin.get(add)
    assert form.status_code == 200 and b'name="username"' in form.content
    with django_capture_on_commit_callbacks(execute=True):
        done = admin.post(add, {"name": "Harbour Records", "kind": "organisation",
                                "contact_name": "", "contact_email": "", "url": "",
                                "username": "harbour", "email": "rights@harbour.example",
                                "password": ""})
    assert done.status_code == 302, done.content[:2000]
    holder = RightsHolder.objects.get(name="Harbour Records")
    assert User.objects.get(username="harbour").rights_holder == holder
    assert len(mail.outbox) == 1 and "/accounts/invitation/" in mail.outbox[0].body
    taken = admin.post(add, {"name": "Other", "kind": "organisation", "username": "harbour",
                             "email": "o@example.org", "password": ""})
    assert taken.status_code == 200 and b"is taken" in taken.content
    assert not RightsHolder.objects.filter(name="Other").exists()
