from django.urls import include, path
from rest_framework.routers import DefaultRouter

from retrieval.apis import AnswerViewSet, DatastoreViewSet, ShareViewSet

router = DefaultRouter()
router.register("datastores", DatastoreViewSet, basename="datastore")
router.register("rag/answers", AnswerViewSet, basename="answer")
router.register("rag/shares", ShareViewSet, basename="answer-share")

urlpatterns = [path("", include(router.urls))]
