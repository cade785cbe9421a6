"""What the administrator's migration commands share: the command base, exit codes and the
``migration_run`` record (see command.py), and later the schema contract they check."""
