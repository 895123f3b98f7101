from django.apps import AppConfig

from deliveries import workflows
from deliveries.signals import notification_engaged
from realtime.signals import event_acknowledged


class CampaignsConfig(AppConfig):
    name = "campaigns"
    verbose_name = "Campaigns and batch jobs"

    def ready(self) -> None:
        # a read, click or ack ends a waiting escalation at once (services.workflows.hooks);
        # imported here, not above: the services need the app registry ready
        from .services.workflows import hooks

        notification_engaged.connect(hooks.on_notification_engaged, dispatch_uid="wf-engaged")
        event_acknowledged.connect(hooks.on_event_acknowledged, dispatch_uid="wf-acked")
        # notify(..., workflow=key) and the sources below campaigns start workflows through
        # deliveries' registered engine (deliveries never imports campaigns)
        workflows.register(hooks.notify_workflow_trigger)
