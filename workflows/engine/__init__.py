"""The workflow engine: node kinds, templates, run execution on Celery."""
