"""/api/v1/: one router; each app registers its viewsets in its api module.

An app takes part by defining ``register_api(router)`` in ``<app>.api`` (a module or a
package). ircore never imports the apps by name (DESIGN.md §1): they are discovered
from the installed app configs, the same way the admin finds ``admin`` modules.
"""

from __future__ import annotations

from importlib import import_module

from django.apps import apps
from django.utils.module_loading import module_has_submodule
from rest_framework.routers import DefaultRouter

from ircore.api_teams import TeamViewSet


def _register_app_apis(router: DefaultRouter) -> None:
    for config in apps.get_app_configs():
        if config.name == "ircore" or not module_has_submodule(config.module, "api"):
            continue
        register = getattr(import_module(f"{config.name}.api"), "register_api", None)
        if callable(register):
            register(router)


router = DefaultRouter()
router.register("teams", TeamViewSet, basename="team")
_register_app_apis(router)

urlpatterns = router.urls
