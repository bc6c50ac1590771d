from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from rest_framework import serializers

from incidents.api.base import ScopedRelatedFieldsMixin, choice_error, visible_users
from incidents.models import Incident, Problem, Service
from ircore import permissions
from ircore.models import Team
from postmortems import selectors
from postmortems.models import (
    ActionItem,
    Postmortem,
    PostmortemChange,
    PostmortemTemplate,
    PostmortemTimelineItem,
)
from postmortems.rendering import render_markdown

User = get_user_model()


class UsernameField(serializers.SlugRelatedField):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("slug_field", "username")
        super().__init__(**kwargs)


class PostmortemTimelineItemSerializer(serializers.ModelSerializer):
    class Meta:
        model = PostmortemTimelineItem
        fields = ["id", "incident_ref", "at", "kind", "message", "actor", "via", "milestone", "hidden",
                  "annotation"]
        read_only_fields = ["id", "incident_ref", "at", "kind", "message", "actor", "via", "milestone"]


class PostmortemChangeSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor.username", default=None, read_only=True)

    class Meta:
        model = PostmortemChange
        fields = ["at", "actor", "action", "message", "fields"]
        read_only_fields = fields


class ActionItemSerializer(ScopedRelatedFieldsMixin, serializers.ModelSerializer):
    owner = UsernameField(queryset=User.objects.none(), required=False, allow_null=True)
    overdue = serializers.BooleanField(source="is_overdue", read_only=True)

    class Meta:
        model = ActionItem
        fields = ["id", "postmortem", "title", "description", "owner", "due_date", "priority", "kind",
                  "status", "ticket_url", "overdue", "created_at", "completed_at"]
        read_only_fields = ["id", "created_at", "completed_at"]
        extra_kwargs = {
            "kind": choice_error("kind", ActionItem.Kind.values),
            "priority": choice_error("priority", ActionItem.Priority.values),
            "status": choice_error("status", ActionItem.Status.values),
        }

    def scoped_querysets(self, user: Any) -> dict[str, QuerySet]:
        return {
            "owner": visible_users(user),
            "postmortem": permissions.scope_queryset(Postmortem.objects.all(), user),
        }

    def validate_postmortem(self, value: Postmortem) -> Postmortem:
        if self.instance is not None and self.instance.postmortem_id != value.pk:
            raise serializers.ValidationError("An action item cannot move to another postmortem.")
        return value


class PostmortemSerializer(ScopedRelatedFieldsMixin, serializers.ModelSerializer):
    ref = serializers.CharField(read_only=True)
    incidents = serializers.SlugRelatedField(many=True, read_only=True, slug_field="number")
    problems = serializers.SlugRelatedField(
        many=True, queryset=Problem.objects.none(), slug_field="number", required=False,
        help_text="Problem numbers (PRB-<n>) of the same team.",
    )
    owner = UsernameField(queryset=User.objects.none(), required=False, allow_null=True)
    reviewers = UsernameField(many=True, read_only=True)
    published_by = UsernameField(read_only=True)
    body_html = serializers.SerializerMethodField(help_text="The body rendered and sanitized.")
    action_items = ActionItemSerializer(many=True, read_only=True)

    class Meta:
        model = Postmortem
        fields = ["id", "ref", "team", "title", "status", "incidents", "problems", "template", "owner",
                  "reviewers", "body", "body_html", "contributing_factors", "action_items", "created_at",
                  "updated_at", "submitted_at", "published_at", "published_by", "timeline_refreshed_at"]
        read_only_fields = ["id", "team", "status", "template", "created_at", "updated_at", "submitted_at",
                            "published_at", "timeline_refreshed_at"]

    def scoped_querysets(self, user: Any) -> dict[str, QuerySet]:
        problems = permissions.scope_queryset(Problem.objects.all(), user)
        return {"owner": visible_users(user), "problems": problems}

    def get_body_html(self, obj: Postmortem) -> str:
        return str(render_markdown(obj.body))


class PostmortemCreateSerializer(ScopedRelatedFieldsMixin, serializers.Serializer):
    incidents = serializers.PrimaryKeyRelatedField(
        many=True, queryset=Incident.objects.none(), allow_empty=False,
        help_text="Ids of resolved incidents of one team.",
    )
    template = serializers.PrimaryKeyRelatedField(
        queryset=PostmortemTemplate.objects.none(), required=False, allow_null=True,
        help_text="Empty: the default template.",
    )
    title = serializers.CharField(required=False, allow_blank=True, max_length=255)

    def scoped_querysets(self, user: Any) -> dict[str, QuerySet]:
        return {
            "incidents": permissions.scope_queryset(Incident.objects.all(), user),
            "template": selectors.postmortem_templates_visible(user=user),
        }


class ReviewSerializer(ScopedRelatedFieldsMixin, serializers.Serializer):
    reviewers = UsernameField(many=True, queryset=User.objects.none(), required=False,
                              help_text="Usernames; empty keeps the current reviewers.")

    def scoped_querysets(self, user: Any) -> dict[str, QuerySet]:
        return {"reviewers": visible_users(user)}


class SummarySerializer(serializers.Serializer):
    summary = serializers.CharField(max_length=20_000, help_text="Markdown, as the public will read it.")


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class PostmortemTemplateSerializer(ScopedRelatedFieldsMixin, serializers.ModelSerializer):
    team = serializers.PrimaryKeyRelatedField(queryset=Team.objects.none(), allow_null=True,
                                              help_text="Null for the shared built-in templates.")

    class Meta:
        model = PostmortemTemplate
        fields = ["id", "team", "name", "description", "body", "is_default", "created_at"]
        read_only_fields = ["id", "created_at", "is_default"]

    def scoped_querysets(self, user: Any) -> dict[str, QuerySet]:
        return {"team": permissions.visible_teams(user)}


class ProblemSerializer(ScopedRelatedFieldsMixin, serializers.ModelSerializer):
    ref = serializers.CharField(read_only=True)
    incidents = serializers.PrimaryKeyRelatedField(many=True, read_only=True)
    postmortems = serializers.PrimaryKeyRelatedField(many=True, read_only=True)

    class Meta:
        model = Problem
        fields = ["id", "ref", "team", "title", "status", "impact", "root_cause", "workaround",
                  "match_service", "match_keywords", "match_dedup_key", "incidents", "postmortems",
                  "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]
        extra_kwargs = {"status": choice_error("status", Problem.Status.values)}

    def scoped_querysets(self, user: Any) -> dict[str, QuerySet]:
        return {
            "team": permissions.visible_teams(user),
            "match_service": permissions.scope_queryset(Service.objects.all(), user),
        }

    def validate_team(self, value: Any) -> Any:
        if self.instance is not None and self.instance.team_id != value.pk:
            raise serializers.ValidationError("A problem cannot move to another team.")
        return value


class LinkIncidentsSerializer(ScopedRelatedFieldsMixin, serializers.Serializer):
    incidents = serializers.PrimaryKeyRelatedField(many=True, queryset=Incident.objects.none(),
                                                   allow_empty=False)

    def scoped_querysets(self, user: Any) -> dict[str, QuerySet]:
        return {"incidents": permissions.scope_queryset(Incident.objects.all(), user)}


class MetricsQuerySerializer(serializers.Serializer):
    period = serializers.ChoiceField(choices=["week", "month", "quarter", "custom"], required=False)
    # ``from`` is a Python keyword: the field is declared under another name, see below.
    to = serializers.CharField(required=False, help_text="Date (inclusive) or ISO 8601 date-time.")
    team = serializers.IntegerField(required=False, min_value=1)
    service = serializers.IntegerField(required=False, min_value=1)

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        fields["from"] = serializers.CharField(required=False, help_text="Date or ISO 8601 date-time.")
        return fields
