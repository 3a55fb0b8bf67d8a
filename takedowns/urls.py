from rest_framework.routers import SimpleRouter

from takedowns import apis

router = SimpleRouter()
router.register("takedowns", apis.TakedownViewSet, basename="takedown")
urlpatterns = router.urls
