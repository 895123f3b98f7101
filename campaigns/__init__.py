"""Batch jobs on top of the pipeline: ``notification_batch_jobs`` and its chunk ledger, the
runner, audiences, the handlers per job type, the commands, admin and API. Calls
invitations' and deliveries' public services; nothing below it imports it."""
