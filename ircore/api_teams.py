"""/api/v1/teams/: the caller's teams and their members (read-only; teams and
memberships are managed in the admin console)."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers, viewsets

from ircore import permissions
from ircore.api import TeamScopedViewSetMixin
from ircore.models import Team, TeamMembership


class TeamMemberSerializer(serializers.ModelSerializer):
    id = serializers.IntegerField(source="user.id", read_only=True)
    username = serializers.CharField(source="user.username", read_only=True)
    name = serializers.CharField(source="user.get_full_name", read_only=True)
    email = serializers.EmailField(source="user.email", read_only=True)

    class Meta:
        model = TeamMembership
        fields = ["id", "username", "name", "email", "role"]
        read_only_fields = fields


class TeamSerializer(serializers.ModelSerializer):
    members = TeamMemberSerializer(source="memberships", many=True, read_only=True)
    my_role = serializers.SerializerMethodField(
        help_text="The caller's role in this team; null for a superuser who is not a member."
    )

    class Meta:
        model = Team
        fields = ["id", "name", "slug", "description", "created_at", "my_role", "members"]
        read_only_fields = fields

    @extend_schema_field(serializers.ChoiceField(choices=TeamMembership.Role.choices, allow_null=True))
    def get_my_role(self, team: Team) -> str | None:
        request = self.context.get("request")
        if request is None:
            return None
        return permissions.team_roles(request.user).get(team.pk)


class TeamViewSet(TeamScopedViewSetMixin, viewsets.ReadOnlyModelViewSet):
    """Teams the caller belongs to (superusers: all teams), with their members."""

    team_field = "pk"
    serializer_class = TeamSerializer
    queryset = Team.objects.all()
    search_fields = ["name", "slug"]
    ordering_fields = ["name", "slug", "created_at"]
    ordering = ["name"]

    def get_queryset(self) -> QuerySet[Team]:
        members = TeamMembership.objects.select_related("user").order_by("user__username")
        return super().get_queryset().prefetch_related(Prefetch("memberships", queryset=members))
