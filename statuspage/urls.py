from django.urls import path

from statuspage import feeds, json_views, views

app_name = "statuspage"

urlpatterns = [
    path("<slug:slug>/", views.page_view, name="page"),
    path("<slug:slug>/history/", views.history_view, name="history"),
    path("<slug:slug>/incidents/<int:pk>/", views.incident_view, name="incident"),
    path("<slug:slug>/maintenance/<int:pk>/", views.maintenance_view, name="maintenance"),
    path("<slug:slug>/subscribe/", views.subscribe_view, name="subscribe"),
    path("<slug:slug>/subscribe/confirm/<str:token>/", views.confirm_view, name="confirm"),
    path("<slug:slug>/unsubscribe/<str:token>/", views.unsubscribe_view, name="unsubscribe"),
    path("<slug:slug>/feed.atom", feeds.atom_view, name="feed-atom"),
    path("<slug:slug>/feed.rss", feeds.rss_view, name="feed-rss"),
] + [
    path(f"<slug:slug>/api/v2/{endpoint}.json", view, name=f"v2-{endpoint.replace('/', '-')}")
    for endpoint, view in json_views.VIEWS.items()
]
