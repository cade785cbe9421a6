from django.apps import AppConfig


class DbadminConfig(AppConfig):
    """The administrators' database commands: back up, restore and roll back, validate the
    schema against the V8 contract, import a legacy v3 database, seed, and say where the
    database stands (rcm_migration_status). They share one base (command.py: exit codes 0/1/2,
    ``--json``) and record every run in ``migration_run``. Top layer, beside the console."""

    name = "dbadmin"
    verbose_name = "Database administration"
