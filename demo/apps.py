from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The demo data set and ``manage.py seed_demo``: a tool beside the source apps, with
    no tables of its own; an app only so that Django finds its management command."""

    name = "demo"
    verbose_name = "Demo data"
