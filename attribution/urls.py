from rest_framework.routers import SimpleRouter

from attribution import apis

router = SimpleRouter()
router.register("outputs", apis.ModelOutputViewSet, basename="output")
router.register("gradient-indexes", apis.GradientIndexViewSet, basename="gradient-index")
router.register("attribution-runs", apis.AttributionRunViewSet, basename="attribution-run")
urlpatterns = router.urls
