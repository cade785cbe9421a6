"""Workflow lookup tables (DESIGN §4): a text key each, seeded by migration 0002."""

from django.db import models

from rcm.lookups import LookupModel


class TaskDomainLu(LookupModel):
    """A business domain of tasks (eligibility, prior_auth, claim, ...)."""

    domain = models.TextField(primary_key=True)

    class Meta(LookupModel.Meta):
        db_table = "task_domain_lu"
        verbose_name = "task domain"


class TaskActionLu(LookupModel):
    """What a task does within its domain (check, submit, appeal, ...)."""

    action = models.TextField(primary_key=True)

    class Meta(LookupModel.Meta):
        db_table = "task_action_lu"
        verbose_name = "task action"


class JobStatusLu(LookupModel):
    """A batch job's or item's status."""

    status = models.TextField(primary_key=True)

    class Meta(LookupModel.Meta):
        db_table = "job_status_lu"
        verbose_name = "job status"
        verbose_name_plural = "job statuses"


class WorkflowStatusLu(LookupModel):
    """A workflow's life-cycle status."""

    status = models.TextField(primary_key=True)

    class Meta(LookupModel.Meta):
        db_table = "workflow_status_lu"
        verbose_name = "workflow status"
        verbose_name_plural = "workflow statuses"


class RequirementTypeLu(LookupModel):
    """How a field is required by a task (required, conditional, optional, output)."""

    rtype = models.TextField(primary_key=True)

    class Meta(LookupModel.Meta):
        db_table = "requirement_type_lu"
        verbose_name = "requirement type"


class TaskSignatureSourceLu(LookupModel):
    """Who defined a task signature: a human, a model, or the system from observed runs."""

    source = models.TextField(primary_key=True)

    class Meta(LookupModel.Meta):
        db_table = "task_signature_source_lu"
        verbose_name = "task signature source"
