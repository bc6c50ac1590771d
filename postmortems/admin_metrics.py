"""The console's metrics page (/admin/metrics/): filters, totals, SVG charts, tables
and a CSV export, all from incidents.metrics (SQL aggregates)."""

from __future__ import annotations

import csv
from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from incidents.metrics import MetricsInputError, metrics_compute, metrics_range
from incidents.models import Incident, Service
from ircore import permissions
from postmortems.charts import incidents_per_week_svg, mtta_mttr_trend_svg


class MetricsForm(forms.Form):
    period = forms.ChoiceField(
        choices=[
            ("week", "Last 7 days"),
            ("month", "Last 30 days"),
            ("quarter", "Last 90 days"),
            ("custom", "Custom range"),
        ],
        required=False,
        initial="month",
    )
    start = forms.CharField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.CharField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))
    team = forms.ModelChoiceField(queryset=None, required=False, empty_label="All my teams")
    service = forms.ModelChoiceField(queryset=None, required=False, empty_label="All services")

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = permissions.visible_teams(user)
        self.fields["service"].queryset = permissions.scope_queryset(
            Service.objects.select_related("team"), user
        )


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def _rows_with_durations(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**row, "mtta": duration(row["mtta_mean"]), "mttr": duration(row["mttr_mean"])} for row in rows]


def metrics_csv(data: dict[str, Any]) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="ircore-metrics.csv"'
    writer = csv.writer(response)
    writer.writerow(["# ircore incident metrics", data["from"], data["to"]])
    writer.writerow(["section", "key", "incidents", "open", "mtta_mean_s", "mttr_mean_s"])
    writer.writerow(
        ["total", "all", data["incidents"], data["open"], data["mtta"]["mean"], data["mttr"]["mean"]]
    )
    writer.writerow(["median", "all", "", "", data["mtta"]["median"], data["mttr"]["median"]])
    for row in data["by_severity"]:
        writer.writerow(
            ["severity", row["severity"], row["count"], row["open"], row["mtta_mean"], row["mttr_mean"]]
        )
    for row in data["by_team"]:
        writer.writerow(["team", row["team"], row["count"], row["open"], row["mtta_mean"], row["mttr_mean"]])
    for row in data["by_service"]:
        writer.writerow(
            ["service", row["service"], row["count"], row["open"], row["mtta_mean"], row["mttr_mean"]]
        )
    for row in data["weekly"]:
        writer.writerow(["week", row["week"], row["count"], row["open"], row["mtta_mean"], row["mttr_mean"]])
    return response


def metrics_view(request: HttpRequest) -> HttpResponse:
    form = MetricsForm(request.GET or None, user=request.user)
    context: dict[str, Any] = {**admin.site.each_context(request), "title": "Incident metrics", "form": form}
    if request.GET and not form.is_valid():
        return TemplateResponse(request, "postmortems/admin/metrics.html", context, status=400)
    params = form.cleaned_data if request.GET else {}
    try:
        rng = metrics_range(
            period=params.get("period") or "", start=params.get("start") or "", end=params.get("end") or ""
        )
    except MetricsInputError as exc:
        context["error"] = str(exc)
        return TemplateResponse(request, "postmortems/admin/metrics.html", context, status=400)
    incidents = permissions.scope_queryset(Incident.objects.all(), request.user)
    if params.get("team"):
        incidents = incidents.filter(team=params["team"])
    if params.get("service"):
        incidents = incidents.filter(service=params["service"])
    data = metrics_compute(queryset=incidents, start=rng.start, end=rng.end)
    if request.GET.get("export") == "csv":
        return metrics_csv(data)
    query = request.GET.copy()
    query["export"] = "csv"
    context.update(
        {
            "range": rng,
            "data": data,
            "mtta_mean": duration(data["mtta"]["mean"]),
            "mtta_median": duration(data["mtta"]["median"]),
            "mttr_mean": duration(data["mttr"]["mean"]),
            "mttr_median": duration(data["mttr"]["median"]),
            "by_severity": _rows_with_durations(data["by_severity"]),
            "by_team": _rows_with_durations(data["by_team"]),
            "by_service": _rows_with_durations(data["by_service"]),
            "weekly_chart": incidents_per_week_svg(data["weekly"]),
            "trend_chart": mtta_mttr_trend_svg(data["weekly"]),
            "csv_query": query.urlencode(),
        }
    )
    return TemplateResponse(request, "postmortems/admin/metrics.html", context)
