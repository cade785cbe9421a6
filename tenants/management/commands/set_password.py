"""``set_password EMAIL``: give a user a new password (Django's changepassword cannot: it looks
the user up with no organization context, which row-level security answers with nobody)."""

import getpass
import secrets

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from rcm.context import org_context
from tenants import selectors, services


class Command(BaseCommand):
    help = "Set a user's password: typed twice at the prompt, or --random (printed once)."

    def add_arguments(self, parser):
        parser.add_argument("email")
        parser.add_argument(
            "--random", action="store_true", help="Generate a password and print it once."
        )

    def handle(self, *args, email, random, **options):
        user = selectors.auth_user_by_email(email=email)
        if user is None:
            raise CommandError(f"No user has the email {email!r}.")
        password = secrets.token_urlsafe(12) if random else self._prompt(user)
        with org_context(user.org_id):
            services.user_update(user=user, actor=None, password=password)
        if random:
            self.stdout.write(f"New password for {user.email} (shown once): {password}")
        else:
            self.stdout.write(self.style.SUCCESS(f"Password changed for {user.email}."))

    def _prompt(self, user) -> str:
        password = getpass.getpass(f"New password for {user.email}: ")
        if password != getpass.getpass("Again: "):
            raise CommandError("The two passwords differ; nothing changed.")
        try:
            validate_password(password, user)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        return password
