"""Input and output of the web-actions API. Secrets go in and never come out: no output
serializer here has a field that could carry one."""

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from rcm.api.serializers import PageQuery, StrictInputSerializer
from webactions.models import CredentialType, WebActionStatus

SECRETS_HELP = (
    "Write-only. user_pass: username, password, optional totp_seed (base32); token: token; "
    "oauth2: client_id, client_secret, token_url (https), optional scope. Any type may add "
    "`extra`, an object of text values."
)


class SecretsField(serializers.JSONField):
    """An object of secrets; checked field by field by the service
    (webactions/services/credentials.py)."""

    def __init__(self, **kwargs):
        super().__init__(write_only=True, help_text=SECRETS_HELP, **kwargs)


class CredentialInput(StrictInputSerializer):
    endpoint_id = serializers.IntegerField(min_value=1)
    name = serializers.CharField(max_length=100)
    account_id = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)
    credential_type = serializers.ChoiceField(choices=CredentialType.choices)
    secrets = SecretsField()
    expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None)


class CredentialUpdateInput(StrictInputSerializer):
    name = serializers.CharField(max_length=100, required=False)
    account_id = serializers.CharField(max_length=200, required=False, allow_blank=True)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)
    is_active = serializers.BooleanField(required=False)


class CredentialRotateInput(StrictInputSerializer):
    secrets = SecretsField()


class CredentialFilter(PageQuery):
    endpoint_id = serializers.IntegerField(min_value=1, required=False)


class CredentialOutput(serializers.Serializer):
    id = serializers.IntegerField()
    endpoint_id = serializers.IntegerField()
    name = serializers.CharField()
    account_id = serializers.CharField()
    credential_type = serializers.CharField()
    expires_at = serializers.DateTimeField(allow_null=True)
    last_validated_at = serializers.DateTimeField(allow_null=True)
    is_active = serializers.BooleanField()
    validation_error = serializers.CharField()
    last_rotation_at = serializers.DateTimeField(allow_null=True)
    rotation_status = serializers.CharField()
    created_by = serializers.UUIDField(source="created_by_id", allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class CredentialAccessOutput(serializers.Serializer):
    id = serializers.IntegerField()
    credential_id = serializers.IntegerField()
    access_type = serializers.CharField()
    actor_user_id = serializers.UUIDField(allow_null=True)
    actor_run_id = serializers.IntegerField(allow_null=True)
    success = serializers.BooleanField()
    error = serializers.CharField()
    created_at = serializers.DateTimeField()


# -- ad-hoc web actions and screenshots ---------------------------------------------------------


class WebActionInput(StrictInputSerializer):
    endpoint_id = serializers.IntegerField(min_value=1)
    credential_id = serializers.IntegerField(min_value=1, required=False, allow_null=True)
    actions = serializers.JSONField(
        help_text="The action list (docs/web-actions.md): checked like a web node's on publish."
    )
    outcomes = serializers.DictField(
        child=serializers.CharField(max_length=500),
        required=False,
        default=dict,
        help_text='Labels and the text the page shows for each ({"not_found": "Member not '
        'found"}): a page showing one when the actions stop is that business answer.',
    )
    input = serializers.DictField(
        required=False,
        default=dict,
        help_text="The values the templates read as {{ input.<field> }} (kept in this web "
        "action alone).",
    )
    max_attempts = serializers.IntegerField(min_value=1, max_value=5, required=False, default=3)
    timeout_s = serializers.IntegerField(min_value=5, max_value=600, required=False, default=120)


class WebActionFilter(PageQuery):
    status = serializers.ChoiceField(choices=WebActionStatus.choices, required=False)


class ScreenshotFilter(PageQuery):
    web_action = serializers.IntegerField(min_value=1, required=False)
    run = serializers.IntegerField(min_value=1, required=False)
    node_run = serializers.IntegerField(min_value=1, required=False)


class ScreenshotOutput(serializers.Serializer):
    id = serializers.IntegerField()
    web_action_id = serializers.IntegerField(allow_null=True)
    node_run_id = serializers.IntegerField(allow_null=True)
    attempt = serializers.IntegerField()
    name = serializers.CharField()
    reason = serializers.CharField()
    page = serializers.CharField()
    created_at = serializers.DateTimeField()
    image_url = serializers.SerializerMethodField()

    def get_image_url(self, screenshot) -> str:
        return reverse("screenshot-image", kwargs={"pk": screenshot.pk})


class ScreenshotDetailOutput(ScreenshotOutput):
    masked_dom = serializers.CharField(help_text="The page's DOM when an action failed, masked.")


class ActionResultOutput(serializers.Serializer):
    phase = serializers.CharField(help_text="login or actions")
    action = serializers.IntegerField()
    tool = serializers.CharField()
    target = serializers.CharField()
    resolved = serializers.CharField()
    duration_ms = serializers.IntegerField()
    success = serializers.BooleanField()
    tier = serializers.IntegerField(
        allow_null=True,
        help_text="How the target was found: 1 memory, 2 the page scored, 3 a model; null when "
        "the action has no target or none was found.",
    )
    tier_reason = serializers.CharField(
        help_text="hit | validation_failed:<why>; … | miss; matched … | repaired score=… "
        "runner_up=… | llm | …miss: <why>"
    )
    state = serializers.IntegerField(
        allow_null=True, required=False, help_text="The remembered page (micro-state) compared."
    )
    similarity = serializers.FloatField(allow_null=True, required=False)
    resolve_ms = serializers.FloatField(
        allow_null=True, required=False, help_text="Finding the target, without the action."
    )
    resolve_parts = serializers.JSONField(
        required=False, help_text="resolve_ms by part (ms): read, mask, embed, search, check."
    )
    repair = serializers.JSONField(
        required=False, help_text="A repair's before, after, score, runner-up and screenshot."
    )
    error_kind = serializers.CharField()
    error = serializers.CharField()


class WebActionOutput(serializers.Serializer):
    id = serializers.IntegerField()
    endpoint_id = serializers.IntegerField(allow_null=True)
    credential_id = serializers.IntegerField(allow_null=True)
    status = serializers.CharField()
    label = serializers.CharField()
    attempt = serializers.IntegerField()
    max_attempts = serializers.IntegerField()
    timeout_s = serializers.IntegerField()
    error_kind = serializers.CharField()
    error = serializers.CharField()
    duration_ms = serializers.IntegerField(allow_null=True)
    created_by = serializers.UUIDField(source="created_by_id", allow_null=True)
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


class WebActionDetailOutput(WebActionOutput):
    actions = serializers.JSONField()
    outcomes = serializers.JSONField()
    input = serializers.JSONField()
    outputs = serializers.JSONField(allow_null=True)
    results = ActionResultOutput(many=True)
    screenshots = serializers.SerializerMethodField()

    @extend_schema_field(ScreenshotOutput(many=True))
    def get_screenshots(self, web_action) -> list:
        return ScreenshotOutput(self.context["screenshots"], many=True).data
