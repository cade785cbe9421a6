"""Workflows in the admin, one module per job: the task catalogue and requirements
(catalogue), workflows with their graph and revisions (authoring), what ran (runs) and batch
jobs with their rows (batch). Roles are the API's: operators author and run, org admins write
requirement policies and read the changelog.

Django imports this package to find the admins; importing the modules registers them.
"""

from workflows.admin import authoring, batch, catalogue, runs  # noqa: F401
