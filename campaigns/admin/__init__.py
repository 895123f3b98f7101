"""campaigns in the admin: batch jobs (``batch``: start form in ``forms``), audiences and
broadcasts (``audiences``), workflows and their runs (``workflows``)."""

from . import audiences, batch, workflows

__all__ = ["audiences", "batch", "workflows"]
