"""/admin/metrics/: mounted by ircore.urls before the admin's own catch-all."""

from django.contrib import admin
from django.urls import path

from postmortems.admin_metrics import metrics_view

urlpatterns = [path("", admin.site.admin_view(metrics_view), name="admin-metrics")]
