from django.db import migrations

from rcm.lookups import (
    JobStatus,
    RequirementType,
    TaskAction,
    TaskDomain,
    TaskSignatureSource,
    WorkflowStatus,
    seed_operation,
)


class Migration(migrations.Migration):
    dependencies = [("workflows", "0001_initial")]

    operations = [
        seed_operation("workflows.TaskDomainLu", TaskDomain),
        seed_operation("workflows.TaskActionLu", TaskAction),
        seed_operation("workflows.JobStatusLu", JobStatus),
        seed_operation("workflows.WorkflowStatusLu", WorkflowStatus),
        seed_operation("workflows.RequirementTypeLu", RequirementType),
        seed_operation("workflows.TaskSignatureSourceLu", TaskSignatureSource),
    ]
