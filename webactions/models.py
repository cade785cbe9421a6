"""Portal credentials and the log of every access to them.

A credential is the login an organization holds for one of its endpoints (a payer portal).
Its secrets (username, password, TOTP seed, tokens) live only in ``encrypted_credential``, a
Fernet token (webactions/crypto.py); every other column is metadata that may be shown.
"""

from django.db import models
from django.db.models import Q

from rcm.db.tenancy import TenantModel


class CredentialType(models.TextChoices):
    USER_PASS = "user_pass"  # username, password, optional TOTP seed
    TOKEN = "token"  # a bearer token or API key the portal issued
    OAUTH2 = "oauth2"  # client id and secret, token URL


class RotationStatus(models.TextChoices):
    NONE = "none"  # the secrets as first stored
    PENDING = "pending_validation"  # replaced by rotate/, not yet tried against the portal
    VALIDATED = "validated"  # replaced and logged in with since
    FAILED = "failed"  # replaced, and the portal refused them


class PortalCredential(TenantModel):
    """One organization's login to one of its endpoints: encrypted secrets plus metadata."""

    id = models.BigAutoField(primary_key=True, db_column="credential_id")
    endpoint = models.ForeignKey(
        "tenants.Endpoint", on_delete=models.PROTECT, related_name="credentials"
    )
    # How people tell credentials apart ("Front desk login"); never a secret.
    name = models.CharField(max_length=100)
    # The portal's account this login belongs to (a provider or office id), shown as is.
    account_id = models.CharField(max_length=200, blank=True, default="")
    encrypted_credential = models.TextField()
    credential_type = models.CharField(max_length=10, choices=CredentialType.choices)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_validated_at = models.DateTimeField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    validation_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    created_by = models.ForeignKey(
        "tenants.User",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_column="created_by",
    )
    last_rotation_at = models.DateTimeField(null=True, blank=True)
    rotation_status = models.CharField(
        max_length=20, choices=RotationStatus.choices, default=RotationStatus.NONE
    )

    class Meta:
        db_table = "portal_credential"
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["org", "endpoint", "name"], name="portal_credential_name_unique"
            ),
            models.CheckConstraint(
                condition=Q(credential_type__in=CredentialType.values),
                name="portal_credential_type_valid",
            ),
            models.CheckConstraint(
                condition=Q(rotation_status__in=RotationStatus.values),
                name="portal_credential_rotation_status_valid",
            ),
            # A Fernet token, never an empty or clear-text value slipped in by hand.
            models.CheckConstraint(
                condition=Q(encrypted_credential__startswith="gAAAAA"),
                name="portal_credential_encrypted",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class AccessType(models.TextChoices):
    RETRIEVE = "retrieve"  # decrypted for use (a worker logging in)
    STORE = "store"  # created with its secrets
    ROTATE = "rotate"  # secrets replaced, or re-encrypted under a new key
    DELETE = "delete"
    VALIDATE = "validate"  # a login tried to check the secrets


class CredentialAccessLog(TenantModel):
    """One access to a credential's secrets: who or which run, what, and whether it worked.

    Append-only: the runtime role may insert and read, never change or delete (rcm/db/roles.py),
    and ``credential_id`` is a plain id, not a foreign key, so that deleting a credential
    leaves the record of who touched its secrets as it was.
    """

    credential_id = models.BigIntegerField()
    access_type = models.CharField(max_length=10, choices=AccessType.choices)
    actor_user = models.ForeignKey(
        "tenants.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # The workflow run (or ad-hoc web action) the access was made for, when not a person.
    actor_run_id = models.BigIntegerField(null=True, blank=True)
    success = models.BooleanField()
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "credential access log entry"
        verbose_name_plural = "credential access log entries"
        db_table = "credential_access_log"
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["org", "credential_id", "-created_at"], name="credential_access_recent"
            )
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(access_type__in=AccessType.values),
                name="credential_access_type_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.access_type} of credential {self.credential_id}"


class BrowserSession(TenantModel):
    """A portal's logged-in browser state (cookies, storage) for one credential, kept so that
    the next rows skip the log-in until it expires or the portal asks again. Encrypted like the
    credential's secrets: a session cookie is as good as the password for its lifetime."""

    credential = models.OneToOneField(
        PortalCredential, on_delete=models.CASCADE, related_name="browser_session"
    )
    encrypted_state = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()

    class Meta:
        db_table = "browser_session"
        constraints = [
            models.CheckConstraint(
                condition=Q(encrypted_state__startswith="gAAAAA"), name="browser_session_encrypted"
            ),
        ]

    def __str__(self) -> str:
        return f"session of credential {self.credential_id}"


class WebActionStatus(models.TextChoices):
    PENDING = "pending"  # accepted, waiting for a browser worker
    RUNNING = "running"  # an attempt holds a browser
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # for good: a permanent failure, or the last attempt's transient one
    CANCELLED = "cancelled"


WEB_ACTION_ACTIVE = (WebActionStatus.PENDING, WebActionStatus.RUNNING)


class WebAction(TenantModel):
    """An action list run once on an endpoint through the API (``POST /web-actions/``), outside
    any workflow: what was asked, and how each action of its last attempt went.

    ``input`` holds the values the actions' templates read (``{{ input.member_id }}``) and
    ``outputs`` what ``extract`` read: a patient's data, kept in this row alone, like a batch
    item's. ``results`` hold no value typed or read (webactions/executor.py ActionResult).
    """

    id = models.BigAutoField(primary_key=True, db_column="web_action_id")
    endpoint = models.ForeignKey(
        "tenants.Endpoint", on_delete=models.SET_NULL, null=True, related_name="+"
    )
    credential = models.ForeignKey(
        PortalCredential, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    actions = models.JSONField()
    outcomes = models.JSONField(default=dict)
    input = models.JSONField(default=dict)
    status = models.CharField(
        max_length=10, choices=WebActionStatus.choices, default=WebActionStatus.PENDING
    )
    # The outcome the page showed when the actions stopped ("not_found"): a business answer.
    label = models.CharField(max_length=100, blank=True, default="")
    outputs = models.JSONField(null=True, blank=True)
    results = models.JSONField(default=list)
    error_kind = models.CharField(max_length=50, blank=True, default="")
    error = models.TextField(blank=True, default="")
    attempt = models.PositiveSmallIntegerField(default=0)
    max_attempts = models.PositiveSmallIntegerField(default=3)
    timeout_s = models.PositiveIntegerField(default=120)
    # Not before then (a transient failure's backoff); the lease of a running attempt: past
    # it, the reaper takes the attempt back as lost (a killed worker).
    not_before = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        "tenants.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        db_table = "web_action"
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["status", "not_before"],
                name="web_action_waiting",
                condition=Q(status__in=WEB_ACTION_ACTIVE),
            )
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=WebActionStatus.values), name="web_action_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(max_attempts__gte=1, max_attempts__lte=5),
                name="web_action_attempts_range",
            ),
        ]

    def __str__(self) -> str:
        return f"web action {self.pk} ({self.status})"


class ScreenshotReason(models.TextChoices):
    REQUESTED = "requested"  # a screenshot action
    FAILURE = "failure"  # taken when an action failed, with the masked DOM
    REPAIR = "repair"  # the page a target was repaired on (tier 2 or 3), before the action


class WebScreenshot(TenantModel):
    """A picture of a portal page taken in a browser attempt, by a ``screenshot`` action or when
    an action failed (then with the page's DOM, masked). The picture itself is PHI: row-level
    security, served only through the API to its organization with each access audited
    (``screenshot.viewed``), purged after WEB_SCREENSHOT_RETENTION_DAYS by beat.

    It belongs to a workflow step's attempt (``node_run``) or to an ad-hoc ``web_action``.
    """

    id = models.BigAutoField(primary_key=True, db_column="screenshot_id")
    node_run = models.ForeignKey(
        "workflows.NodeRun", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    web_action = models.ForeignKey(
        WebAction, on_delete=models.CASCADE, null=True, blank=True, related_name="screenshots"
    )
    attempt = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=100)
    reason = models.CharField(max_length=10, choices=ScreenshotReason.choices)
    # Host and path of the page (never its query, which may carry a row's values).
    page = models.CharField(max_length=500, blank=True, default="")
    image = models.BinaryField()  # PNG
    masked_dom = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "web_screenshot"
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["created_at"], name="web_screenshot_created")]
        constraints = [
            models.CheckConstraint(
                condition=Q(node_run__isnull=True, web_action__isnull=False)
                | Q(node_run__isnull=False, web_action__isnull=True),
                name="web_screenshot_one_owner",
            ),
            models.CheckConstraint(
                condition=Q(reason__in=ScreenshotReason.values), name="web_screenshot_reason_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"screenshot {self.name}"
