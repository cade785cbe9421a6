"""Workflow lookups in the admin: read-only to staff, editable by sys_admin."""

from django.contrib import admin

from tenants.admin import LookupAdmin
from workflows.models import (
    JobStatusLu,
    RequirementTypeLu,
    TaskActionLu,
    TaskDomainLu,
    TaskSignatureSourceLu,
    WorkflowStatusLu,
)

admin.site.register(
    (
        TaskDomainLu,
        TaskActionLu,
        JobStatusLu,
        WorkflowStatusLu,
        RequirementTypeLu,
        TaskSignatureSourceLu,
    ),
    LookupAdmin,
)
