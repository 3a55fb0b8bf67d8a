from django.urls import path, re_path

from dashboards import portal, views

urlpatterns = [
    path("", views.home, name="home"),
    path("health/", views.health, name="health"),
    path("transparency/", views.transparency, name="transparency"),
    path("staff/", views.staff, name="staff"),
    path("audit/", views.audit, name="audit"),
    re_path(r"^audit/export/(?P<what>ledger|takedowns|attribution-runs)\.(?P<fmt>csv|json)$",
            views.audit_export, name="audit-export"),
    path("datasets/<slug:slug>/v<int:number>/", views.version_page, name="version"),
    path("runs/", views.runs, name="runs"),
    path("runs/<int:run_id>/", views.run_detail, name="run"),
    path("checkpoints/<int:checkpoint_id>/", views.checkpoint_detail, name="checkpoint"),
    path("models/<int:checkpoint_id>/", views.model_page, name="model"),
    path("models/<int:checkpoint_id>/ai-act/", views.ai_act_summary, name="ai-act-summary"),
    path("models/<int:checkpoint_id>/ai-act.pdf", views.ai_act_summary_pdf,
         name="ai-act-summary-pdf"),
    path("watermarks/", views.watermark_check, name="watermarks"),
    path("sources/<int:source_id>/", views.source_detail, name="source"),
    path("datastores/", views.datastores, name="datastores"),
    path("datastores/<int:datastore_id>/", views.datastore_detail, name="datastore"),
    path("outputs/<int:output_id>/", views.output_detail, name="output"),
    path("attribution/<int:run_id>/", views.attribution_detail, name="attribution"),
    path("takedowns/", portal.takedowns, name="takedowns"),
    path("takedowns/new/", portal.takedown_new, name="takedown-new"),
    path("takedowns/<int:takedown_id>/", portal.takedown_detail, name="takedown"),
    path("takedowns/<int:takedown_id>/receipt.json", portal.takedown_receipt,
         name="takedown-receipt"),
]
