"""``memory_reembed [--org ORG_ID ...] [--all]``: embed stored micro-states again with the
configured embedder, after MEMORY_EMBEDDER (or its model) changed.

Search compares only states made by the embedder in use, so until they are re-embedded the
states of the old one are invisible to it. Each batch commits on its own: an interrupted run
is resumed by running it again (states already made by the embedder in use are skipped unless
``--all``).
"""

from __future__ import annotations

import uuid

from django.core.management.base import BaseCommand
from django.db import connection

from memory import selectors, services
from memory.embeddings import embedder
from rcm.context import org_context
from rcm.progress import ProgressBar
from tenants.management.arguments import org_id_argument


class Command(BaseCommand):
    help = "Re-embed stored micro-states with the configured embedder (after changing it)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--org",
            action="append",
            default=[],
            metavar="ORG_ID",
            help="An organization to re-embed (repeatable; default: every organization with "
            "stored states).",
        )
        parser.add_argument(
            "--all",
            action="store_true",
            help="Also states already made by the configured embedder.",
        )

    def handle(self, *args, **options):
        org_ids = [org_id_argument(value) for value in options["org"]] or _orgs_with_states()
        in_use = embedder()
        only_stale = not options["all"]
        self.stdout.write(f"Embedder: {in_use.model_id} ({in_use.native_dimension}-D).")
        total = 0
        for org_id in org_ids:
            with org_context(org_id):
                count = selectors.micro_state_reembed_list(
                    embedder=in_use.model_id, only_stale=only_stale
                ).count()
                if not count:
                    continue
                with ProgressBar(count, f"org {str(org_id)[:8]}", stream=self.stderr) as bar:
                    done = services.micro_state_reembed(
                        using=in_use, only_stale=only_stale, progress=bar.advance
                    )
            total += done
        self.stdout.write(
            self.style.SUCCESS(f"Re-embedded {total} states in {len(org_ids)} organizations.")
        )


def _orgs_with_states() -> list[uuid.UUID]:
    # A SECURITY DEFINER function: the one cross-organization read this command needs, the
    # ids alone (memory/migrations).
    with connection.cursor() as cursor:
        cursor.execute("SELECT org_id FROM micro_state_org_ids()")
        return [row[0] for row in cursor.fetchall()]
