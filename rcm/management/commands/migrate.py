"""``migrate`` as the owner role (see rcm/db/roles.py); otherwise Django's own command."""

from django.core.management.commands.migrate import Command as DjangoMigrate

from rcm.db.roles import as_owner, grant_runtime_privileges


class Command(DjangoMigrate):
    def handle(self, *args, **options):
        with as_owner(options["database"]):
            super().handle(*args, **options)
            grant_runtime_privileges(options["database"])
