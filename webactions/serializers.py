"""Input and output of the web-actions API. Secrets go in and never come out: no output
serializer here has a field that could carry one."""

from rest_framework import serializers

from rcm.api.serializers import PageQuery, StrictInputSerializer
from webactions.models import CredentialType

SECRETS_HELP = (
    "Write-only. user_pass: username, password, optional totp_seed (base32); token: token; "
    "oauth2: client_id, client_secret, token_url (https), optional scope. Any type may add "
    "`extra`, an object of text values."
)


class SecretsField(serializers.JSONField):
    """An object of secrets; checked field by field by the service (webactions/services.py)."""

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
