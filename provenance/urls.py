from django.urls import include, path
from rest_framework.routers import DefaultRouter

from provenance.apis import datasets, sources, synthesis, training
from provenance.apis.log import TransparencyLogViewSet
from provenance.apis.tokens import TokenRevokeView, TokenView

router = DefaultRouter()
router.register("rights-holders", sources.RightsHolderViewSet, basename="rights-holder")
router.register("sources", sources.SourceViewSet, basename="source")
router.register("license-refs", sources.LicenseRefViewSet, basename="license-ref")
router.register("documents", sources.DocumentViewSet, basename="document")
router.register("datasets", datasets.DatasetViewSet, basename="dataset")
router.register("versions", datasets.VersionViewSet, basename="version")
router.register("ingest-jobs", datasets.IngestJobViewSet, basename="ingest-job")
router.register("curation-jobs", datasets.CurationJobViewSet, basename="curation-job")
router.register("ledger", datasets.LedgerViewSet, basename="ledger")
router.register("log", TransparencyLogViewSet, basename="log")
router.register("training-runs", training.TrainingRunViewSet, basename="training-run")
router.register("checkpoints", training.CheckpointViewSet, basename="checkpoint")
router.register("canary-tests", training.CanaryTestRunViewSet, basename="canary-test")
router.register("synthesis-jobs", synthesis.SynthesisJobViewSet, basename="synthesis-job")

urlpatterns = [
    path("auth/token/", TokenView.as_view(), name="auth-token"),
    path("auth/logout/", TokenRevokeView.as_view(), name="auth-logout"),
    path("auth/logout-all/", TokenRevokeView.as_view(everyone=True), name="auth-logout-all"),
    path("watermarks/detect/", training.WatermarkDetectView.as_view(), name="watermark-detect"),
    path("", include(router.urls)),
]
