"""Organizations, users, endpoints with their credentials, and the credential access log.

These go through the tenants and web-actions services, one row at a time: they check what
they are given (an email domain another organization owns, a duplicate endpoint, secrets of
the wrong shape), audit what they create, and there are few of these rows. Each service call
runs in a savepoint of its step, so a refused row is rejected alone.
"""

from __future__ import annotations

import json
import uuid

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction

from dbadmin.legacy.idmap import digest
from dbadmin.legacy.secrets import RULES_VERSION, config_secrets_removed, url_secrets_removed
from dbadmin.legacy.tables import BulkTable, Rejected, Skipped
from dbadmin.legacy.values import Unmapped
from rcm.errors import ApplicationError
from rcm.lookups import UserRole
from tenants import services as tenant_services
from tenants.models import Endpoint, Membership, Organization, User
from webactions.models import CredentialAccessLog, CredentialType, PortalCredential
from webactions.services import credentials as credential_services

ORG_PATH, USER_PATH, ENDPOINT_PATH = "organization", "app_user", "integration_endpoint"
CREDENTIAL_PATH, ACCESS_LOG_PATH = "credential", "credential_access_log"
# The name a credential found in a v3 endpoint's config is stored under.
CREDENTIAL_NAME = "Imported from v3"


# -- organizations ---------------------------------------------------------------------------


def import_organization(run) -> bool:
    """The v3 organization as a V8 one with the same id (created, updated or as it was);
    False when it is rejected, and then nothing of it is read. Runs in its own context."""
    row, report = run.legacy_org, run.report
    legacy_id = str(row.org_id)
    report.read(ORG_PATH)
    try:
        org_type = run.values("org_type", row.org_type)
    except Unmapped as exc:
        report.reject(ORG_PATH, legacy_id, f"{exc}; nothing of this organization is imported")
        return False
    row_hash = digest(row.row_md5, org_type)
    entry = run.idmap.get("organization", "organization", legacy_id)
    if entry is not None and entry.row_hash == row_hash:
        report.tally(ORG_PATH, "unchanged")
        return True
    if entry is None and Organization.objects.filter(pk=run.org_id).exists():
        report.reject(
            ORG_PATH,
            legacy_id,
            "V8 has an organization with this id that this import did not make; "
            "nothing of this organization is imported",
        )
        return False
    fields = {"name": row.name[:200], "email_domain": row.email_domain or None}
    try:
        with transaction.atomic():
            if entry is None:
                tenant_services.organization_create(org_id=run.org_id, org_type=org_type, **fields)
            Organization.objects.filter(pk=run.org_id).update(
                org_type_id=org_type, created_at=row.created_at, **fields
            )
    except (ApplicationError, IntegrityError):
        report.reject(
            ORG_PATH,
            legacy_id,
            f"V8 has another organization named {row.name!r} or with the email domain "
            f"{row.email_domain!r}; nothing of this organization is imported",
        )
        return False
    run.idmap.record("organization", "organization", [(legacy_id, run.org_id, row_hash)])
    report.tally(ORG_PATH, "created" if entry is None else "updated")
    return True


# -- users -----------------------------------------------------------------------------------

# Emails are one login whatever their case (V8's unique index is on lower(email)); of v3 users
# sharing one, the first created is imported, in every run alike, and the others rejected.
USERS_QUERY = """
SELECT * FROM (
    SELECT u.user_id, u.org_id, btrim(u.email) AS email, u.full_name, u.role::text AS role,
           u.created_at, md5(u::text) AS row_md5,
           first_value(u.user_id) OVER same_email AS first_id,
           first_value(btrim(u.email)) OVER same_email AS first_email
      FROM app_user u
    WINDOW same_email AS (PARTITION BY lower(btrim(u.email)) ORDER BY u.created_at, u.user_id)
) users
 WHERE org_id = %s
 ORDER BY created_at, user_id
"""


def import_users(run) -> None:
    for row in run.source.all(USERS_QUERY, [run.legacy_org.org_id]):
        run.report.read(USER_PATH)
        try:
            outcome, user_id = _user(run, row)
        except Rejected as exc:
            run.report.reject(USER_PATH, row.user_id, str(exc))
            continue
        run.report.tally(USER_PATH, outcome)
        run.users_by_email[row.email.lower()] = user_id


def _user(run, row) -> tuple[str, uuid.UUID]:
    if row.first_id != row.user_id:
        raise Rejected(
            f"duplicate email {row.email} (already imported as {row.first_email}, "
            f"v3 user {row.first_id})"
        )
    try:
        role = run.values("user_role", row.role)
        validate_email(row.email)
    except Unmapped as exc:
        raise Rejected(str(exc)) from exc
    except ValidationError as exc:
        raise Rejected(f"{row.email!r} is not an email address") from exc
    row_hash = digest(row.row_md5, role)
    entry = run.idmap.get("app_user", "app_user", row.user_id)
    if entry is not None and entry.row_hash == row_hash:
        return "unchanged", uuid.UUID(entry.target_id)
    try:
        with transaction.atomic():
            user = _user_write(run, row, role, entry)
    except ApplicationError as exc:
        taken = exc.code == "email_taken"
        raise Rejected(
            f"V8 has a user with the email {row.email} already" if taken else exc.message
        ) from exc
    if role == UserRole.SYS_ADMIN:
        run.report.note(
            USER_PATH,
            row.user_id,
            f"{row.email} is imported as sys_admin: platform staff, who may act in every "
            "organization; make sure that is meant",
        )
    run.idmap.record("app_user", "app_user", [(row.user_id, user.pk, row_hash)])
    return ("created" if entry is None else "updated"), user.pk


def _user_write(run, row, role: str, entry) -> User:
    if entry is None:
        user = tenant_services.user_create(
            org_id=run.org_id, email=row.email, role=role, full_name=row.full_name or ""
        )
    else:
        user = User.objects.get(pk=entry.target_id)
        tenant_services.user_update(
            user=user, actor=None, email=row.email, full_name=row.full_name or ""
        )
        # Roles change through memberships in V8; the home membership follows the v3 role.
        Membership.objects.filter(user=user, org_id=run.org_id).update(role_id=role)
    User.objects.filter(pk=user.pk).update(role_id=role, created_at=row.created_at)
    return user


# -- endpoints and their credentials ---------------------------------------------------------


def import_endpoints(run) -> None:
    for row in run.source.all(
        "SELECT portal_id, name, portal_type_id, base_url, config, created_at, secret_arn, "
        "md5(e::text) AS row_md5 FROM integration_endpoint e WHERE org_id = %s "
        "ORDER BY portal_id",
        [run.legacy_org.org_id],
    ):
        run.report.read(ENDPOINT_PATH)
        try:
            outcome, endpoint_id, credentials = _endpoint(run, row)
        except Rejected as exc:
            run.report.reject(ENDPOINT_PATH, row.portal_id, str(exc))
            continue
        run.report.tally(ENDPOINT_PATH, outcome)
        run.endpoints[row.portal_id] = (endpoint_id, row.portal_type_id)
        if credentials is not None:
            _credential(run, row, endpoint_id, credentials)
        elif row.secret_arn:
            run.report.note(
                CREDENTIAL_PATH,
                row.portal_id,
                f"its secret is kept in AWS Secrets Manager ({row.secret_arn}), which the import "
                "does not read: add the credential in the console",
            )


def _endpoint(run, row) -> tuple[str, int, object]:
    channel = run.catalogue.channel_types.get(row.portal_type_id)
    if channel is None:
        raise Rejected(f"its portal type {row.portal_type_id} was not imported")
    if not isinstance(row.config, dict):
        raise Rejected("config is not a JSON object")
    config = dict(row.config)
    credentials = config.pop("credentials", None)
    removed: list[str] = []
    config = config_secrets_removed(config, "config", removed)
    base_url = url_secrets_removed(row.base_url or "", "base_url", removed)
    for path in removed:
        run.report.note(
            ENDPOINT_PATH, row.portal_id, f"{path} is left out: a secret outside config.credentials"
        )
    row_hash = digest(row.row_md5, channel.pk, RULES_VERSION)
    entry = run.idmap.get("integration_endpoint", "endpoint", row.portal_id)
    if entry is not None and entry.row_hash == row_hash:
        return "unchanged", int(entry.target_id), credentials
    fields = {
        "name": row.name[:200],
        "channel_type": channel,
        "base_url": base_url[:500],
        "config": config,
    }
    try:
        with transaction.atomic():
            if entry is None:
                endpoint = tenant_services.endpoint_create(org_id=run.org_id, **fields)
            else:
                endpoint = Endpoint.objects.get(pk=entry.target_id)
                tenant_services.endpoint_update(endpoint=endpoint, **fields)
            if row.created_at is not None:
                Endpoint.objects.filter(pk=endpoint.pk).update(created_at=row.created_at)
    except ApplicationError as exc:
        raise Rejected(exc.message) from exc
    run.idmap.record("integration_endpoint", "endpoint", [(row.portal_id, endpoint.pk, row_hash)])
    return ("created" if entry is None else "updated"), endpoint.pk, credentials


def _credential(run, row, endpoint_id: int, credentials) -> None:
    """The secrets a v3 config held in clear, sealed as the endpoint's portal credential."""
    report = run.report
    report.read(CREDENTIAL_PATH)
    if not isinstance(credentials, dict):
        report.reject(CREDENTIAL_PATH, row.portal_id, "config.credentials is not an object")
        return
    credential_type, secrets = _secrets(credentials)
    row_hash = digest(json.dumps(credentials, sort_keys=True, default=str), endpoint_id)
    entry = run.idmap.get("integration_endpoint", "portal_credential", row.portal_id)
    if entry is not None and entry.row_hash == row_hash:
        report.tally(CREDENTIAL_PATH, "unchanged")
        return
    try:
        with transaction.atomic():
            if entry is None:
                credential = credential_services.credential_create(
                    org_id=run.org_id,
                    actor=None,
                    endpoint_id=endpoint_id,
                    name=CREDENTIAL_NAME,
                    credential_type=credential_type,
                    secrets=secrets,
                )
            else:
                credential = credential_services.credential_rotate(
                    credential=PortalCredential.objects.get(pk=entry.target_id),
                    actor=None,
                    secrets=secrets,
                )
    except ApplicationError as exc:
        fields = ", ".join(sorted(exc.details.get("secrets", {}))) or exc.message
        report.reject(
            CREDENTIAL_PATH,
            row.portal_id,
            f"the credentials in config cannot be stored (at fault: {fields}); they are not "
            "imported: add them in the console",
        )
        return
    run.idmap.record(
        "integration_endpoint", "portal_credential", [(row.portal_id, credential.pk, row_hash)]
    )
    report.tally(CREDENTIAL_PATH, "created" if entry is None else "updated")


def _secrets(credentials: dict) -> tuple[str, dict]:
    """(credential type, secrets): the type their fields name; other text values go to
    ``extra`` (a practice id, a security answer), where the service keeps them sealed too."""
    if "token" in credentials:
        credential_type = CredentialType.TOKEN
    elif "client_id" in credentials:
        credential_type = CredentialType.OAUTH2
    else:
        credential_type = CredentialType.USER_PASS
    required, optional = credential_services.SECRET_FIELDS[credential_type]
    secrets, extra = {}, {}
    for name, value in credentials.items():
        if name in (*required, *optional) or not isinstance(value, str):
            secrets[name] = value
        else:
            extra[name] = value
    if extra:
        secrets["extra"] = extra
    return credential_type, secrets


# -- the credential access log ---------------------------------------------------------------


class AccessLog(BulkTable):
    """v3's log of secret accesses, into V8's log of the credential the endpoint's config
    credentials became. v3 logged accesses to AWS secrets too, which the import does not bring
    over: those rows have no credential in V8 and are skipped, saying so. V8's log has no place
    for v3's ip_address, user_agent, metadata and secret_arn."""

    path = ACCESS_LOG_PATH
    legacy_table = "credential_access_log"
    model = CredentialAccessLog
    fields = (
        "org", "credential_id", "access_type", "actor_user", "actor_run_id", "success", "error",
        "created_at",
    )  # fmt: skip
    append_only = True

    key = "id"
    query = """
        SELECT id, access_timestamp, portal_id, secret_arn, access_type, access_by, success,
               error_message, md5(l::text) AS row_md5
          FROM credential_access_log l
         WHERE portal_id IN (SELECT portal_id::text FROM integration_endpoint
                              WHERE org_id = %(org)s)
         ORDER BY id
    """

    def fingerprint(self, row) -> tuple:
        portal_id = int(row.portal_id)
        if portal_id not in self.run.endpoints:
            raise Skipped(f"its endpoint {portal_id} was not imported")
        credential_id = self.run.target("integration_endpoint", "portal_credential", portal_id)
        if credential_id is None:
            raise Skipped(
                f"endpoint {portal_id} has no credential in V8 (v3 kept it "
                f"{'in AWS Secrets Manager' if row.secret_arn else 'nowhere the import reads'})"
            )
        return (credential_id, self._actor(row))

    def values(self, row, resolved: tuple) -> tuple:
        try:
            access_type = self.run.values("access_type", row.access_type)
        except Unmapped as exc:
            raise Skipped(str(exc)) from exc
        credential_id, actor = resolved
        return (
            self.run.org_id,
            int(credential_id),
            access_type,
            actor,
            None,
            row.success,
            self.run.mask(row.error_message or "")[:2000],
            row.access_timestamp,
        )

    def _actor(self, row) -> uuid.UUID | None:
        """The V8 user ``access_by`` names: by email, or by v3 user id."""
        name = (row.access_by or "").strip()
        if name.lower() in self.run.users_by_email:
            return self.run.users_by_email[name.lower()]
        target = self.run.target("app_user", "app_user", name) if name else None
        return uuid.UUID(target) if target else None


def import_access_log(run) -> None:
    AccessLog(run).run_all()


def report_unowned_access_log(main) -> None:
    """Log rows whose portal_id names no v3 endpoint belong to no organization: reported."""
    for row in main.source.all(
        "SELECT id, portal_id FROM credential_access_log l WHERE NOT EXISTS "
        "(SELECT 1 FROM integration_endpoint e WHERE e.portal_id::text = l.portal_id) "
        "ORDER BY id"
    ):
        main.report.read(ACCESS_LOG_PATH)
        main.report.skip(
            ACCESS_LOG_PATH,
            row.id,
            f"its portal_id {row.portal_id!r} names no v3 endpoint (no organization owns it)",
        )
