"""campaigns in the admin: batch jobs (``batch``: start form in ``forms``), audiences and
broadcasts (``audiences``)."""

from . import audiences, batch

__all__ = ["audiences", "batch"]
