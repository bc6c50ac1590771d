"""ircore's URLs plus the bare baseline view at /bench/bare/."""

from django.urls import include, path

from bench.bare import bare_view

urlpatterns = [
    path("bench/bare/", bare_view, name="bench-bare"),
    path("", include("ircore.urls")),
]
