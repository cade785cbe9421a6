"""``rotate_credential_keys``: re-encrypt every portal credential with the newest key.

Key rotation in three steps (docs/web-actions.md): put a new key in front of
RCM_CREDENTIAL_KEYS and restart (new secrets are sealed with it, old ones still open), run
this command, then drop the old keys. Each credential is its own transaction, so an
interrupted run is finished by running it again.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from rcm.progress import ProgressBar
from webactions.services import credentials as credential_services


class Command(BaseCommand):
    help = "Re-encrypt every portal credential with the newest key of RCM_CREDENTIAL_KEYS."

    def handle(self, *args, **options):
        bar: ProgressBar | None = None

        def progress(done: int, total: int) -> None:
            nonlocal bar
            if bar is None:
                bar = ProgressBar(total, "credentials", stream=self.stderr)
            bar.advance()

        try:
            done = credential_services.credential_keys_rotate(on_progress=progress)
        finally:
            if bar is not None:
                bar.close()
        self.stdout.write(f"Re-encrypted {done['rotated']} credential(s) with the newest key.")
        if done["unreadable"]:
            raise CommandError(
                f"{done['unreadable']} credential(s) could not be decrypted with any configured "
                "key (see their access log); keep the old keys until they are dealt with."
            )
