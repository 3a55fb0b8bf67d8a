from __future__ import annotations

from typing import Any

from rest_framework import serializers

from provenance.models import DataSource, ModelCheckpoint
from provenance.selectors import source_list
from provenance.serializers import VisibleId
from takedowns.models import (
    TakedownEvent,
    TakedownMatch,
    TakedownRequest,
    TakedownWork,
    UnlearningRun,
)

State = TakedownRequest.State
MAX_WORKS = 1000  # works named in one request (a catalogue claim lists many; each is scoped)


def plain(data: Any) -> dict[str, Any]:
    """Validated serializer data as plain dicts and lists for the services."""
    out = dict(data)
    if "statements" in out:
        out["statements"] = dict(out["statements"])
    if "works" in out:
        out["works"] = [dict(w) for w in out["works"]]
    return out


class WorkIn(serializers.Serializer):
    id = serializers.IntegerField(required=False, help_text="in a supplement only: the work "
                                  "(of this request) to complete or correct; the fields given "
                                  "replace its own")
    title = serializers.CharField(max_length=500, allow_blank=True, required=False)
    identifiers = serializers.ListField(child=serializers.CharField(max_length=200),
                                        required=False, max_length=100)
    urls = serializers.ListField(child=serializers.URLField(max_length=2000), required=False,
                                 max_length=100)
    sample_text = serializers.CharField(required=False, allow_blank=True, max_length=200_000)


class StatementsIn(serializers.Serializer):
    good_faith = serializers.BooleanField(required=False, help_text="DMCA §512(c)(3)(A)(v)")
    accuracy = serializers.BooleanField(required=False, help_text="DMCA §512(c)(3)(A)(vi)")
    authority_under_perjury = serializers.BooleanField(
        required=False, help_text="DMCA §512(c)(3)(A)(vi): under penalty of perjury")
    bona_fide = serializers.BooleanField(required=False, help_text="DSA Art. 16(2)(d)")


class TakedownFields(serializers.Serializer):
    remedy = serializers.ChoiceField(TakedownRequest.Remedy.choices, required=False)
    claimant_name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    claimant_email = serializers.EmailField(required=False, allow_blank=True)
    organisation = serializers.CharField(max_length=200, required=False, allow_blank=True)
    postal_address = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    telephone = serializers.CharField(max_length=50, required=False, allow_blank=True)
    authority = serializers.ChoiceField(TakedownRequest.Authority.choices, required=False)
    proof = serializers.CharField(required=False, allow_blank=True, max_length=20_000)
    explanation = serializers.CharField(required=False, allow_blank=True, max_length=20_000)
    reservation = serializers.CharField(required=False, allow_blank=True, max_length=20_000)
    personal_data = serializers.CharField(required=False, allow_blank=True, max_length=20_000)
    ground = serializers.ChoiceField([(g, g) for g in "abcdef"], required=False,
                                     help_text="GDPR Art. 17(1)(a)-(f)")
    licence = serializers.CharField(required=False, allow_blank=True, max_length=20_000)
    statements = StatementsIn(required=False)
    signature = serializers.CharField(max_length=200, required=False, allow_blank=True,
                                      help_text="the signer's typed full name")
    works = WorkIn(many=True, required=False, max_length=MAX_WORKS)  # type: ignore[call-arg]


class TakedownIn(TakedownFields):
    legal_basis = serializers.ChoiceField(TakedownRequest.Basis.choices)
    claimed_sources = VisibleId(
        source_list, queryset=DataSource.objects.all(), many=True, required=False,
        help_text="sources whose every document is claimed (a rights-holder's own)")


class ScopeReviewIn(serializers.Serializer):
    confirm = serializers.ListField(child=serializers.IntegerField(), required=False,
                                    max_length=100_000)
    dismiss = serializers.ListField(child=serializers.IntegerField(), required=False,
                                    max_length=100_000)


class CounterStatementsIn(serializers.Serializer):
    mistake_under_perjury = serializers.BooleanField(required=False,
                                                     help_text="§512(g)(3)(C)")
    consent_to_jurisdiction = serializers.BooleanField(required=False,
                                                       help_text="§512(g)(3)(D)")


class CounterNoticeIn(serializers.Serializer):
    claimant_name = serializers.CharField(max_length=200, required=False, allow_blank=True,
                                          help_text="the subscriber")
    claimant_email = serializers.EmailField(required=False, allow_blank=True)
    postal_address = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    telephone = serializers.CharField(max_length=50, required=False, allow_blank=True)
    material = serializers.CharField(required=False, allow_blank=True, max_length=20_000)
    statements = CounterStatementsIn(required=False)
    signature = serializers.CharField(max_length=200, required=False, allow_blank=True)


class RemediateIn(serializers.Serializer):
    purge_text = serializers.BooleanField(required=False, allow_null=True, default=None,
                                          help_text="default: purge for GDPR erasure only")
    descendants = serializers.BooleanField(
        default=False, help_text="also remove the synthetic text written by models trained on "
                                 "the work (the scope's descendants), so that the versions "
                                 "holding it are republished without it and its students are "
                                 "among the models to remediate")


class RemediateModelsIn(serializers.Serializer):
    methods = serializers.ListField(
        child=serializers.ChoiceField(UnlearningRun.Method.values), min_length=1,
        help_text="retrain (the gold standard), graddiff, npo, simnpo, output_filter; several "
                  "may run side by side, each on every chosen checkpoint")
    checkpoints = serializers.PrimaryKeyRelatedField(
        queryset=ModelCheckpoint.objects.all(), many=True, required=False,
        help_text="default: every checkpoint trained on the removed documents")
    config = serializers.DictField(
        child=serializers.DictField(), required=False,
        help_text="per method: training options for retrain, unlearning options "
                  "(steps, learning_rate, eval_every, beta, retain_weight, ...) for the others")


class CancelRunIn(serializers.Serializer):
    run = serializers.IntegerField()


class UnlearningRunOut(serializers.ModelSerializer):
    percent = serializers.FloatField(read_only=True)
    result_name = serializers.CharField(source="result.name", default=None)

    class Meta:
        model = UnlearningRun
        fields = ["id", "checkpoint", "method", "config", "version", "training_run", "state",
                  "stage", "position", "total", "percent", "error", "result", "result_name",
                  "seconds", "device", "verdict", "certificate", "created_at", "started_at",
                  "finished_at"]


class MatchOut(serializers.ModelSerializer):
    class Meta:
        model = TakedownMatch
        fields = ["document", "work", "method", "score", "confirmed", "note"]


class ScopeAddIn(serializers.Serializer):
    documents = serializers.ListField(child=serializers.IntegerField(min_value=1),
                                      min_length=1, max_length=10_000)
    reason = serializers.CharField(max_length=2_000, help_text="why they hold the work")
    work = serializers.IntegerField(required=False, help_text="the request's work they hold")


class ScopeSearchOut(serializers.Serializer):
    document = serializers.IntegerField()
    excerpt = serializers.CharField()
    sources = serializers.ListField(child=serializers.CharField())


class TakedownDecisionIn(serializers.Serializer):
    to = serializers.ChoiceField([s for s in State.values if s != State.WITHDRAWN])
    reasons = serializers.CharField(required=False, allow_blank=True, max_length=20_000)
    duplicate_of = serializers.PrimaryKeyRelatedField(queryset=TakedownRequest.objects.all(),
                                                      required=False)


class TakedownWithdrawIn(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=5000)


class WorkOut(serializers.ModelSerializer):
    class Meta:
        model = TakedownWork
        fields = ["id", "title", "identifiers", "urls", "sample_sha256"]


class EventOut(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor.username", default=None, allow_null=True,
                                  help_text="a username, or for a claimant the role of "
                                            "Trailmark's people (curator, admin)")
    ledger_seq = serializers.IntegerField(source="ledger_entry.seq", default=None)

    class Meta:
        model = TakedownEvent
        fields = ["from_state", "to_state", "actor", "note", "at", "ledger_seq"]

    def to_representation(self, instance: TakedownEvent) -> dict[str, Any]:
        from takedowns.selectors import event_actor

        data = super().to_representation(instance)
        request = self.context.get("request")
        if request is not None:
            data["actor"] = event_actor(instance.actor, request.user)
        return data


class TakedownOut(serializers.ModelSerializer):
    works = WorkOut(many=True, read_only=True)
    events = EventOut(many=True, read_only=True)

    class Meta:
        model = TakedownRequest
        fields = ["id", "reference", "state", "legal_basis", "remedy", "claimant_name",
                  "claimant_email", "organisation", "authority", "rights_holder", "works",
                  "statements", "signature", "signed_at", "missing", "deadlines",
                  "decision_reasons", "duplicate_of", "claimed_sources", "scope", "overdue_since",
                  "counter_notice", "verification", "decision",
                  "received_at", "acknowledged_at", "state_changed_at", "events"]
