from django.urls import path, re_path

from dashboards.apis import ModelCardView, VersionCardViewSet
from dashboards.services import FORMATS

urlpatterns = [
    path("versions/<int:version_id>/card/",
         VersionCardViewSet.as_view({"get": "retrieve", "patch": "partial_update"}),
         name="version-card"),
    path("versions/<int:version_id>/card/publish/",
         VersionCardViewSet.as_view({"post": "publish"}), name="version-card-publish"),
    path("versions/<int:version_id>/card/revise/",
         VersionCardViewSet.as_view({"post": "revise"}), name="version-card-revise"),
    re_path(rf"^versions/(?P<version_id>[0-9]+)/card/(?P<fmt>{'|'.join(FORMATS)})/$",
            VersionCardViewSet.as_view({"get": "download"}), name="version-card-download"),
    path("checkpoints/<int:checkpoint_id>/card/", ModelCardView.as_view(), name="model-card"),
]
