"""Print the permission table (rcm/permissions.py) as docs/security.md shows it."""

from django.core.management.base import BaseCommand

from rcm.permissions import table_markdown


class Command(BaseCommand):
    help = "Print who may view, add, change, delete and run each resource (Markdown)."

    def handle(self, *args, **options):
        self.stdout.write(table_markdown())
