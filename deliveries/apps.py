from django.apps import AppConfig


class DeliveriesConfig(AppConfig):
    name = "deliveries"
    verbose_name = "Notifications and deliveries"

    def ready(self) -> None:
        # providers reads its traffic figures through deliveries' selectors, handed over here
        # (providers never imports deliveries: see providers/traffic.py). Imported here, not
        # at the top: selectors imports models, which cannot load before the app registry.
        from providers import traffic

        from . import selectors

        traffic.register(
            traffic.TrafficSource(
                success_rates=selectors.provider_success_rates,
                spent_between=selectors.provider_spent_between,
                provider_annotations=selectors.provider_annotations,
                spend_by_day=selectors.provider_spend_by_day,
            )
        )
