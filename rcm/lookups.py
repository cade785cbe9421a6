"""Lookup tables (they replaced V8's ENUMs) and the constants code uses to name their rows.

A lookup table has a single text primary key, is seeded by a data migration with the values
below (exact, in this order), stays editable at runtime (a new payer action is a row, not a
migration) and is referenced by foreign keys. tests/rcm/test_lookups.py proves every constant
here is a row.
"""

from django.db import models


class LookupModel(models.Model):
    """Base of a lookup table: the key, a human label, a display order and an active flag."""

    description = models.TextField(blank=True, default="")
    sort_order = models.PositiveIntegerField(default=0)
    is_active = models.BooleanField(default=True)

    class Meta:
        abstract = True
        ordering = ["sort_order"]

    def __str__(self) -> str:
        return str(self.pk)


class Values:
    """A namespace of lookup values; ``ordered()`` lists them in seeding order."""

    @classmethod
    def ordered(cls) -> list[str]:
        return [value for name, value in vars(cls).items() if name.isupper()]


class TaskDomain(Values):
    ELIGIBILITY = "eligibility"
    PRIOR_AUTH = "prior_auth"
    CLAIM = "claim"
    PAYMENT = "payment"
    PATIENT = "patient"
    PROVIDER = "provider"
    BILLING = "billing"
    REPORTING = "reporting"
    DOCUMENT = "document"


class TaskAction(Values):
    CHECK = "check"
    VERIFY = "verify"
    UPDATE = "update"
    SUBMIT = "submit"
    CHECK_STATUS = "check_status"
    APPEAL = "appeal"
    EXTEND = "extend"
    SUBMIT_CLAIM = "submit_claim"
    STATUS_CHECK = "status_check"
    RESUBMIT = "resubmit"
    VOID = "void"
    CORRECT = "correct"
    POST = "post"
    RECONCILE = "reconcile"
    ADJUST = "adjust"
    REFUND = "refund"
    SEARCH = "search"
    REGISTER = "register"
    UPDATE_DEMOGRAPHICS = "update_demographics"
    VERIFY_INSURANCE = "verify_insurance"
    CREDENTIAL = "credential"
    ENROLL = "enroll"
    UPDATE_INFO = "update_info"
    GENERATE_STATEMENT = "generate_statement"
    SEND_INVOICE = "send_invoice"
    APPLY_PAYMENT = "apply_payment"
    GENERATE_REPORT = "generate_report"
    EXPORT_DATA = "export_data"
    ANALYZE = "analyze"
    UPLOAD = "upload"
    DOWNLOAD = "download"
    PARSE = "parse"
    VALIDATE = "validate"
    CHECK_LEGACY = "check_legacy"
    STATUS_CHECK_LEGACY = "status_check_legacy"


class JobStatus(Values):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    PARTIALLY_COMPLETED = "partially_completed"
    CANCELLED = "cancelled"


class OrgType(Values):
    HOSPITAL = "hospital"
    BILLING_FIRM = "billing_firm"
    CREDENTIALER = "credentialer"


class ChannelAuthType(Values):
    USERNAME_PASSWORD = "username_password"
    OAUTH2 = "oauth2"
    API_KEY = "api_key"
    CERTIFICATE = "certificate"
    SAML = "saml"


class WorkflowStatus(Values):
    DRAFT = "draft"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    COMPLETED = "completed"
    ARCHIVED = "archived"


class UserRole(Values):
    ADMIN = "admin"
    OPERATOR = "operator"
    VIEWER = "viewer"
    API_USER = "api_user"
    ORG_ADMIN = "org_admin"
    FIRM_USER = "firm_user"
    HOSPITAL_USER = "hospital_user"
    SYS_ADMIN = "sys_admin"


class RequirementType(Values):
    REQUIRED = "required"
    CONDITIONAL = "conditional"
    OPTIONAL = "optional"
    OUTPUT = "output"


class TaskSignatureSource(Values):
    HUMAN = "human"
    AI_GENERATED = "ai_generated"
    SYSTEM_LEARNED = "system_learned"


# Privilege rank of each role (DESIGN §5): viewer reads; operator (and the legacy firm_user and
# hospital_user) also authors and runs; org_admin (and legacy admin) also manages members,
# endpoints and credentials; sys_admin is platform staff. api_user is a machine operator.
ROLE_RANK = {
    UserRole.VIEWER: 10,
    UserRole.API_USER: 20,
    UserRole.OPERATOR: 20,
    UserRole.FIRM_USER: 20,
    UserRole.HOSPITAL_USER: 20,
    UserRole.ORG_ADMIN: 30,
    UserRole.ADMIN: 30,
    UserRole.SYS_ADMIN: 40,
}


def role_at_least(role: str | None, minimum: str) -> bool:
    return role is not None and ROLE_RANK.get(role, 0) >= ROLE_RANK[minimum]


def seed_operation(model_label: str, values: Values | type[Values]):
    """A migration operation that inserts the lookup rows (and leaves extra rows alone)."""
    from django.db import migrations

    def seed(apps, schema_editor):
        model = apps.get_model(model_label)
        for order, value in enumerate(values.ordered(), start=1):
            model.objects.update_or_create(pk=value, defaults={"sort_order": order})

    def unseed(apps, schema_editor):
        apps.get_model(model_label).objects.filter(pk__in=values.ordered()).delete()

    return migrations.RunPython(seed, unseed)
