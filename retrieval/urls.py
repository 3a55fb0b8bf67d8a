from django.urls import include, path
from rest_framework.routers import DefaultRouter

from retrieval.apis import DatastoreViewSet

router = DefaultRouter()
router.register("datastores", DatastoreViewSet, basename="datastore")

urlpatterns = [path("", include(router.urls))]
