"""Organizations, users, memberships, portals, API keys and the audit trail."""

import uuid

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.db import models
from django.db.models import Exists, OuterRef, Q
from django.db.models.functions import Lower

from rcm.context import org_context, require_org_id
from rcm.db.tenancy import TenantManager, TenantModel
from rcm.lookups import ROLE_RANK, ChannelAuthType, LookupModel, UserRole


class OrgTypeLu(LookupModel):
    """A kind of organization: hospital, billing firm, credentialer."""

    org_type = models.TextField(primary_key=True)

    class Meta(LookupModel.Meta):
        db_table = "org_type_lu"
        verbose_name = "organization type"


class UserRoleLu(LookupModel):
    """A role a member can hold in an organization."""

    role = models.TextField(primary_key=True)

    class Meta(LookupModel.Meta):
        db_table = "user_role_lu"
        verbose_name = "user role"


class ChannelAuthTypeLu(LookupModel):
    """How a portal authenticates its users (password, OAuth2, API key, ...)."""

    auth_type = models.TextField(primary_key=True)

    class Meta(LookupModel.Meta):
        db_table = "channel_auth_type_lu"
        verbose_name = "channel auth type"


class Organization(models.Model):
    """A tenant: a hospital, a billing firm or a credentialer. Every other row belongs to one."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, db_column="org_id")
    org_type = models.ForeignKey(
        OrgTypeLu, on_delete=models.PROTECT, db_column="org_type", related_name="+"
    )
    name = models.CharField(max_length=200, unique=True)
    email_domain = models.CharField(max_length=253, unique=True, null=True, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    # An organization row is its own tenant: its primary key is the org_id the policy checks.
    objects = TenantManager(org_field="id")

    class Meta:
        db_table = "organization"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class UserQuerySet(models.QuerySet):
    def visible_in(self, org_id):
        """Users whose home is ``org_id`` or who are members of it (the RLS rule, mirrored)."""
        member = Membership.objects.unscoped().filter(user_id=OuterRef("pk"), org_id=org_id)
        return self.filter(Q(org_id=org_id) | Exists(member))


class UserManager(BaseUserManager.from_queryset(UserQuerySet)):
    def get_queryset(self):
        return super().get_queryset().visible_in(require_org_id())

    def scope(self, queryset, org_id):
        return queryset.visible_in(org_id)

    def unscoped(self):
        return UserQuerySet(self.model, using=self._db)

    def get_by_natural_key(self, username):
        return self.get(email__iexact=username)


class User(AbstractBaseUser):
    """A person or machine that logs in (by email); belongs to a home organization."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, db_column="user_id")
    email = models.EmailField(max_length=254)
    full_name = models.CharField(max_length=200, blank=True, default="")
    org = models.ForeignKey(
        Organization, on_delete=models.PROTECT, db_column="org_id", related_name="home_users"
    )
    role = models.ForeignKey(
        UserRoleLu, on_delete=models.PROTECT, db_column="role", related_name="+"
    )
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False, help_text="May log in to the admin UI.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_login = models.DateTimeField(null=True, blank=True, db_column="last_login_at")

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["full_name"]

    class Meta:
        db_table = "app_user"
        ordering = ["email"]
        constraints = [
            # Emails are unique whatever their case: Ann@x.org and ann@x.org are one login.
            models.UniqueConstraint(Lower("email"), name="app_user_email_ci_unique"),
        ]

    def __str__(self) -> str:
        return self.email

    @property
    def is_superuser(self) -> bool:
        return self.role_id == UserRole.SYS_ADMIN

    def check_password(self, raw_password) -> bool:
        """Django's check, whose re-hash (after a hasher or iteration change) is saved in the
        user's own organization: saved with none, RLS would hide the row and the log-in fail."""
        from django.contrib.auth.hashers import check_password

        def rehash(raw):
            self.set_password(raw)
            self._password = None
            with org_context(self.org_id):
                type(self).objects.filter(pk=self.pk).update(password=self.password)

        return check_password(raw_password, self.password, rehash)

    def has_perm(self, perm, obj=None) -> bool:
        # Django's per-model permissions are not used: every admin page asks the permission
        # table (rcm/permissions.py) through rcm.admin's bases. Nothing is granted here, so a
        # page that forgot to ask shows nothing.
        return False

    def has_module_perms(self, app_label) -> bool:
        return self.is_active and self.is_staff


class Membership(TenantModel):
    """A user's membership of an organization, with the role they hold there."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    role = models.ForeignKey(
        UserRoleLu, on_delete=models.PROTECT, db_column="role", related_name="+"
    )
    is_active = models.BooleanField(default=True)
    is_primary = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "user_organization"
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["user", "org"], name="user_organization_unique"),
            models.UniqueConstraint(
                fields=["user"], condition=Q(is_primary=True), name="user_organization_one_primary"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.org_id} as {self.role_id}"

    @property
    def rank(self) -> int:
        return ROLE_RANK.get(self.role_id, 0)


class InvitationStatus(models.TextChoices):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    REVOKED = "revoked"


class Invitation(TenantModel):
    """An organization's offer of a membership, with a role, to whoever owns an email address.

    Nobody becomes a member of an organization without accepting one (from their own account)
    or redeeming its token (creating an account). Only a SHA-256 of the token is kept: the
    token itself is in the invitee's mail and nowhere else.
    """

    email = models.EmailField(max_length=254, help_text="Stored lower-cased.")
    role = models.ForeignKey(
        UserRoleLu, on_delete=models.PROTECT, db_column="role", related_name="+"
    )
    invited_by = models.ForeignKey(
        User, on_delete=models.PROTECT, db_column="invited_by", related_name="+"
    )
    token_hash = models.CharField(max_length=64, unique=True)
    status = models.CharField(
        max_length=10, choices=InvitationStatus.choices, default=InvitationStatus.PENDING
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    responded_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        User,
        on_delete=models.PROTECT,
        db_column="accepted_by",
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        db_table = "membership_invitation"
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=InvitationStatus.values),
                name="membership_invitation_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(email=Lower("email")), name="membership_invitation_email_lower"
            ),
            # Inviting an address again refreshes the pending invitation instead.
            models.UniqueConstraint(
                fields=["org", "email"],
                condition=Q(status=InvitationStatus.PENDING),
                name="membership_invitation_one_pending",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.email} as {self.role_id} ({self.status})"


class EndpointKind(models.TextChoices):
    PAYER = "payer"
    PROVIDER = "provider"
    CLEARINGHOUSE = "clearinghouse"


class AccessMedium(models.TextChoices):
    WEB = "web"
    PHONE = "phone"
    FAX = "fax"
    EFAX = "efax"
    EDI = "edi"


class ChannelType(models.Model):
    """A portal in the global catalogue (Availity, UHC, a state Medicaid line, ...)."""

    id = models.BigAutoField(primary_key=True, db_column="channel_type_id")
    code = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    base_url = models.URLField(max_length=500, blank=True, default="")
    endpoint_kind = models.CharField(max_length=20, choices=EndpointKind.choices)
    access_medium = models.CharField(max_length=10, choices=AccessMedium.choices)
    auth_type = models.ForeignKey(
        ChannelAuthTypeLu,
        on_delete=models.PROTECT,
        db_column="auth_type",
        related_name="+",
        default=ChannelAuthType.USERNAME_PASSWORD,
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "channel_type"
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=Q(endpoint_kind__in=EndpointKind.values),
                name="channel_type_endpoint_kind_valid",
            ),
            models.CheckConstraint(
                condition=Q(access_medium__in=AccessMedium.values),
                name="channel_type_access_medium_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Endpoint(TenantModel):
    """An organization's use of a portal: its own name, URL override and settings."""

    id = models.BigAutoField(primary_key=True, db_column="endpoint_id")
    name = models.CharField(max_length=200)
    channel_type = models.ForeignKey(
        ChannelType, on_delete=models.PROTECT, related_name="endpoints"
    )
    base_url = models.URLField(max_length=500, blank=True, default="")
    config = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "endpoint"
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["org", "name"], name="endpoint_org_name_unique"),
            models.UniqueConstraint(
                fields=["org", "channel_type"], name="endpoint_org_channel_unique"
            ),
            models.CheckConstraint(
                condition=Q(config__has_key="max_concurrency"),
                name="endpoint_config_has_max_concurrency",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def effective_base_url(self) -> str:
        return self.base_url or self.channel_type.base_url


class ApiKey(TenantModel):
    """A machine credential of an api_user member. Only a hash of the key is kept."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64)
    created_by = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, related_name="+", db_column="created_by"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API key"
        verbose_name_plural = "API keys"
        db_table = "api_key"
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class AuditEvent(models.Model):
    """One audited act. Append-only; each row carries the hash of the one before it.

    Rows are written only through the ``audit_event_append`` database function, which holds a
    lock while it reads the previous hash, so the chain has no forks under concurrency.
    """

    id = models.BigAutoField(primary_key=True)
    org = models.ForeignKey(
        Organization,
        on_delete=models.DO_NOTHING,
        db_column="org_id",
        null=True,
        related_name="+",
        db_constraint=False,
    )
    actor_id = models.UUIDField(null=True)
    actor_email = models.CharField(max_length=254, blank=True, default="")
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=64, blank=True, default="")
    object_id = models.CharField(max_length=64, blank=True, default="")
    ip_address = models.GenericIPAddressField(null=True)
    request_id = models.CharField(max_length=64, blank=True, default="")
    details = models.JSONField(default=dict)
    created_at = models.DateTimeField()
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    objects = TenantManager()

    class Meta:
        db_table = "audit_event"
        ordering = ["-id"]
        indexes = [models.Index(fields=["org", "-id"], name="audit_event_org_id_idx")]

    def __str__(self) -> str:
        return f"{self.action} by {self.actor_email or self.actor_id} at {self.created_at}"
