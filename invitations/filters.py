"""FilterSets for invitations."""

from __future__ import annotations

from typing import Any

import django_filters

from notifyplatform.api_filters import IntegerFilter
from notifyplatform.choices import InvitationType

from .models import InvitationAction, InvitationStatus, StoryInvitation, UserInvitationHistory


class InvitationFilter(django_filters.FilterSet):
    direction = django_filters.ChoiceFilter(
        choices=[("sent", "Sent"), ("received", "Received")], method="filter_direction"
    )
    status = django_filters.MultipleChoiceFilter(choices=InvitationStatus.choices)
    type = django_filters.MultipleChoiceFilter(
        field_name="invitation_type", choices=InvitationType.choices
    )

    class Meta:
        model = StoryInvitation
        fields = ["direction", "status", "type"]

    def __init__(self, *args: Any, request_user: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.request_user = request_user
        if request_user is None and self.request is not None:
            self.request_user = self.request.user

    def filter_direction(self, queryset: Any, name: str, value: str) -> Any:
        if value == "sent":
            return queryset.filter(inviter=self.request_user)
        return queryset.filter(invitee_user=self.request_user)


class InvitationHistoryFilter(django_filters.FilterSet):
    action = django_filters.MultipleChoiceFilter(choices=InvitationAction.choices)
    invitation = IntegerFilter(field_name="invitation_id")
    after = django_filters.IsoDateTimeFilter(field_name="action_timestamp", lookup_expr="gte")
    before = django_filters.IsoDateTimeFilter(field_name="action_timestamp", lookup_expr="lt")

    class Meta:
        model = UserInvitationHistory
        fields = ["action", "invitation", "after", "before"]
