"""ircore's URLs plus the bare baseline view at /bench/bare/."""

from django.urls import include, path

from bench.bare import bare_view
from bench.statuspage_bench import bare_get_view

urlpatterns = [
    path("bench/bare/", bare_view, name="bench-bare"),
    path("bench/bare-get/", bare_get_view, name="bench-bare-get"),
    path("", include("ircore.urls")),
]
