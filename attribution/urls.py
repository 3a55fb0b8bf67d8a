from rest_framework.routers import SimpleRouter

from attribution import apis

router = SimpleRouter()
router.register("outputs", apis.ModelOutputViewSet, basename="output")
urlpatterns = router.urls
