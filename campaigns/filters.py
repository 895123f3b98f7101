"""FilterSets of batch jobs (the staff API's ``?status=`` and ``?job_type=``)."""

from __future__ import annotations

import django_filters

from .models import BatchJobStatus, BatchJobType, NotificationBatchJob


class BatchJobFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=BatchJobStatus.choices)
    job_type = django_filters.ChoiceFilter(choices=BatchJobType.choices)

    class Meta:
        model = NotificationBatchJob
        fields = ["status", "job_type"]
