"""ircore's URLs plus the bare baseline views, at the same level: the endpoints resolve
exactly as in production (an ``include("ircore.urls")`` here would add a resolver level
to their path, and to theirs only)."""

from django.urls import path

from bench.bare import bare_view
from bench.statuspage_bench import bare_get_view
from ircore.urls import urlpatterns as ircore_urlpatterns

urlpatterns = [
    path("bench/bare/", bare_view, name="bench-bare"),
    path("bench/bare-get/", bare_get_view, name="bench-bare-get"),
    *ircore_urlpatterns,
]
