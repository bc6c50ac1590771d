"""Production settings plus one extra route, the bare baseline view. Only the benchmark
uses this module (DJANGO_SETTINGS_MODULE=bench.settings), so production URLs never
contain the bench route."""

from ircore.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
