"""manage.py demo_load [--if-empty]: the demo workspace (users, sources, documents, versions)."""

from __future__ import annotations

import json
import secrets
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from attribution.services.outputs import model_output_create
from demo import corpus as demo
from provenance.models import DatasetVersion, DataSource, Document, RightsHolder, User
from provenance.services import curation, datasets, documents, ingest, sources, usage
from provenance.services.canaries import (
    canary_register,
    canary_test_run_create,
    canary_test_run_execute,
)
from provenance.services.training import training_run_create, training_run_execute

Role = User.Role
CREDENTIALS = "demo_credentials.json"
HOLDER_LOGINS = {"Harbor Press": "harbor", "Northwind Media": "northwind"}
# Prompts as WASA evaluates: the opening sentence of a document from each trained source.
PROMPT_SOURCES = ["encyclopedia", "essays", "letters", "lectures", "mirror"]


def credentials_path() -> Path:
    return Path(settings.STATE_DIR) / CREDENTIALS


def _users(password: str, holders: dict[str, RightsHolder]) -> list[dict[str, str]]:
    made = []
    staff = [("admin", Role.ADMIN), ("curator", Role.CURATOR), ("auditor", Role.AUDITOR),
             ("researcher", Role.RESEARCHER)]
    for username, role in staff:
        user = User.objects.create_user(username, f"{username}@demo.invalid", password, role=role,
                                        is_staff=role == Role.ADMIN,
                                        is_superuser=role == Role.ADMIN)
        made.append({"username": user.username, "role": role})
    for holder_name, username in HOLDER_LOGINS.items():
        User.objects.create_user(username, f"{username}@demo.invalid", password,
                                 role=Role.RIGHTS_HOLDER, rights_holder=holders[holder_name])
        made.append({"username": username, "role": f"rights_holder ({holder_name})"})
    return made


class Command(BaseCommand):
    help = "Load the demo workspace."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("--if-empty", action="store_true",
                            help="do nothing if any rights-holder exists (first start only)")

    def _train(self, admin: User, version: DatasetVersion, prompts: list[str]) -> None:
        """A checkpoint on the research version, trained here so it exists when the app opens;
        its demo generations are queued for the worker (the gpu queue)."""
        self.stdout.write(f"  training a demo model on {version} ...")
        created = training_run_create(version=version, actor=admin, enqueue=False,
                                      config={"watermarks": True, "snapshots": 2})
        run = training_run_execute(run_id=created.pk)
        if run is None or run.state != run.State.SUCCEEDED:
            self.stderr.write(f"  demo training failed: {run.error if run else '?'}")
            return
        checkpoint = run.checkpoint
        self.stdout.write(f"  {checkpoint}: {checkpoint.metrics['parameters']:,} parameters, "
                          f"held-out loss {checkpoint.metrics['heldout_loss']:.3f}, "
                          f"{run.tokens_per_s or 0:,.0f} tokens/s")
        for prompt in prompts:
            model_output_create(checkpoint=checkpoint, prompt=prompt, actor=admin,
                                params={"max_new_tokens": 48})
        queued = canary_test_run_create(checkpoint=checkpoint, actor=admin, enqueue=False)
        test = canary_test_run_execute(run_id=queued.pk)
        if test is not None:
            found = sorted(r.source.name for r in test.results.filter(detected=True))
            self.stdout.write(f"  canary test: power {test.power}, calibration "
                              f"{test.calibration:.3f}; detected in {', '.join(found)}")

    def _takedown(self, essays: DataSource, version: DatasetVersion) -> None:
        """Harbor Press asks for one essay the demo model trained on to be taken out (DMCA): a
        request waiting for a curator, to follow from the portal."""
        from takedowns.services.requests import takedown_file

        essay = Document.objects.filter(occurrences__source=essays,
                                        memberships__version=version).order_by("sha256")[3].text
        harbor = User.objects.get(username=HOLDER_LOGINS["Harbor Press"])
        request = takedown_file(actor=harbor, data={
            "legal_basis": "dmca_512", "remedy": "both",
            "claimant_name": "Harbor Press rights desk",
            "claimant_email": "rights@harbor.example", "organisation": "Harbor Press",
            "postal_address": "1 Quay Street, Harbor Town", "authority": "owner",
            "statements": {"good_faith": True, "accuracy": True, "authority_under_perjury": True},
            "signature": "Harbor Press rights desk",
            "works": [{"title": "Essay: " + essay.split(".")[0],
                       "urls": ["https://harborpress.example.com/essays/3"],
                       "sample_text": essay}]})
        self.stdout.write(f"  takedown request {request.reference}: {request.state}")

    def _datastore(self, admin: User, version: DatasetVersion) -> None:
        """The research version as a datastore, queued: the worker `make run` starts builds it
        (beside the documents' embeddings), and its progress shows on the jobs board."""
        from retrieval.services.datastores import datastore_create

        store = datastore_create(version=version, name="demo-research-store", actor=admin)
        self.stdout.write(f"  datastore {store.name}: queued for the worker")

    def handle(self, *args, **opts):  # type: ignore[no-untyped-def]
        if opts["if_empty"] and RightsHolder.objects.exists():
            self.stdout.write("demo workspace: data present, not loading")
            return
        corpus = demo.build_corpus()
        password = secrets.token_urlsafe(9)
        with transaction.atomic():
            holders = {}
            for owner in dict.fromkeys(s.owner for s in corpus):
                holders[owner] = sources.rights_holder_create(
                    actor=None, name=owner, contact_email=f"rights@{owner.split()[0].lower()}"
                                                          ".example", verified=True)
            users = _users(password, holders)
            admin = User.objects.get(username="admin")
            made = {}
            for src in corpus:
                made[src.key] = sources.source_create(
                    actor=admin, owner=holders[src.owner], name=src.name,
                    license_expression=src.license_expression, uri=src.uri,
                    acquisition=src.acquisition)
                # Every demo source opts in to a canary, so each checkpoint can be tested.
                canary_register(source=made[src.key], actor=admin, spec={"copies": 8})
                if src.opt_out:
                    usage.opt_out_signal_record(
                        source=made[src.key], actor=admin,
                        observed_at=timezone.now() - timedelta(days=30), **src.opt_out)
        folder = Path(settings.ARTIFACT_DIR) / "demo"
        for src in corpus:
            job = ingest.ingest_path(source=made[src.key], path=demo.write_files(src, folder),
                                     actor=admin)
            self.stdout.write(f"  {src.name:28} {job.rows_added:3} new, {job.rows_linked} shared")
        # One article withdrawn by its owner: tombstoned, so no curated version carries it.
        withdrawn = Document.objects.filter(occurrences__source=made["encyclopedia"]).order_by(
            "sha256").first()
        documents.document_tombstone(document=withdrawn, actor=admin,
                                     reason="demo: withdrawn at the owner's request")
        for slug, title, use in [("demo-commercial", "Demo corpus for commercial training",
                                  "commercial"),
                                 ("demo-research", "Demo corpus for academic research",
                                  "academic")]:
            dataset = datasets.dataset_create(actor=admin, slug=slug, title=title)
            job = datasets.curation_job_create(dataset=dataset, actor=admin, enqueue=False,
                                               recipe={"intended_use": use, "publish": True,
                                                       "holdout_fraction": 0.1})
            finished = curation.curation_run(job_id=job.pk)
            assert finished is not None and finished.version is not None
            version = finished.version
            self.stdout.write(f"  {version}: {version.document_count} documents, excluded "
                              f"{version.exclusions_by_reason}")
        by_key = {src.key: src for src in corpus}
        self._train(admin, version, [by_key[key].texts[-1].split(". ")[0] + "."
                                     for key in PROMPT_SOURCES])
        self._takedown(made["essays"], version)
        self._datastore(admin, version)
        path = credentials_path()
        path.write_text(json.dumps({"password": password, "users": users}, indent=2))
        path.chmod(0o600)
        self.stdout.write(self.style.SUCCESS("demo workspace loaded"))
