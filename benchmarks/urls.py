from django.urls import include, path
from rest_framework.routers import DefaultRouter

from benchmarks.apis import BenchmarkRunViewSet, BenchmarkViewSet

router = DefaultRouter()
router.register("benchmarks", BenchmarkViewSet, basename="benchmark")
router.register("benchmark-runs", BenchmarkRunViewSet, basename="benchmark-run")

urlpatterns = [path("", include(router.urls))]
