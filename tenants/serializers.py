"""Input and output serializers of the tenants endpoints (one pair per endpoint)."""

from rest_framework import serializers

from rcm.api.serializers import StrictInputSerializer
from rcm.lookups import ChannelAuthType, UserRole
from tenants.models import AccessMedium, EndpointKind

MEMBER_ROLES = [role for role in UserRole.ordered() if role != UserRole.SYS_ADMIN]


# -- auth ----------------------------------------------------------------------------------
class TokenInput(StrictInputSerializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(max_length=256, trim_whitespace=False)
    org_id = serializers.UUIDField(required=False)


class RefreshInput(StrictInputSerializer):
    refresh = serializers.CharField(max_length=4096)


class SwitchOrgInput(StrictInputSerializer):
    org_id = serializers.UUIDField()


class TokenOutput(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()
    org_id = serializers.UUIDField()
    role = serializers.CharField()


# -- organizations, users, memberships -----------------------------------------------------
class OrganizationOutput(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    org_type = serializers.CharField(source="org_type_id")
    email_domain = serializers.CharField(allow_null=True)
    is_active = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class OrganizationUpdateInput(StrictInputSerializer):
    name = serializers.CharField(max_length=200, required=False)
    email_domain = serializers.RegexField(
        r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$",
        required=False,
        allow_null=True,
        error_messages={"invalid": "Enter a domain name such as example.org."},
    )


class UserOutput(serializers.Serializer):
    id = serializers.UUIDField()
    email = serializers.EmailField()
    full_name = serializers.CharField()
    home_org_id = serializers.UUIDField(source="org_id")
    role = serializers.CharField(
        source="member_role", allow_null=True, help_text="Role of the membership in this org."
    )
    membership_active = serializers.BooleanField(source="member_active", allow_null=True)
    is_active = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    last_login_at = serializers.DateTimeField(source="last_login", allow_null=True)


class MembershipOutput(serializers.Serializer):
    id = serializers.IntegerField()
    user_id = serializers.UUIDField()
    email = serializers.EmailField(source="user.email")
    full_name = serializers.CharField(source="user.full_name")
    org_id = serializers.UUIDField()
    role = serializers.CharField(source="role_id")
    is_active = serializers.BooleanField()
    is_primary = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class MembershipUpdateInput(StrictInputSerializer):
    role = serializers.ChoiceField(choices=MEMBER_ROLES, required=False)
    is_active = serializers.BooleanField(required=False)


# -- invitations ---------------------------------------------------------------------------
class InvitationCreateInput(StrictInputSerializer):
    email = serializers.EmailField(max_length=254)
    role = serializers.ChoiceField(choices=MEMBER_ROLES)

    def validate_email(self, value: str) -> str:
        return value.strip().lower()


class InvitationOutput(serializers.Serializer):
    """The same fields whoever the email belongs to: nothing here says whether an account
    exists (no name, no user id) and the token is never in it."""

    id = serializers.IntegerField()
    email = serializers.EmailField()
    role = serializers.CharField(source="role_id")
    status = serializers.CharField()
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    invited_by = serializers.UUIDField(source="invited_by_id")


class MyInvitationOutput(serializers.Serializer):
    id = serializers.IntegerField()
    org_id = serializers.UUIDField()
    org_name = serializers.CharField()
    role = serializers.CharField()
    invited_by_name = serializers.CharField()
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()


class MyInvitationListOutput(serializers.Serializer):
    results = MyInvitationOutput(many=True)


class InvitationRedeemInput(StrictInputSerializer):
    token = serializers.CharField(max_length=128)
    full_name = serializers.CharField(max_length=200)
    password = serializers.CharField(max_length=256, trim_whitespace=False, write_only=True)


class InvitationRedeemOutput(serializers.Serializer):
    user_id = serializers.UUIDField(source="id")
    org_id = serializers.UUIDField()
    email = serializers.EmailField()


# -- portals -------------------------------------------------------------------------------
class ChannelTypeOutput(serializers.Serializer):
    id = serializers.IntegerField()
    code = serializers.CharField()
    name = serializers.CharField()
    base_url = serializers.CharField()
    endpoint_kind = serializers.CharField()
    access_medium = serializers.CharField()
    auth_type = serializers.CharField(source="auth_type_id")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class ChannelTypeUpdateInput(StrictInputSerializer):
    name = serializers.CharField(max_length=200, required=False)
    base_url = serializers.URLField(max_length=500, required=False, allow_blank=True)
    endpoint_kind = serializers.ChoiceField(choices=EndpointKind.values, required=False)
    access_medium = serializers.ChoiceField(choices=AccessMedium.values, required=False)


class ChannelTypeInput(StrictInputSerializer):
    code = serializers.SlugField(max_length=64)
    name = serializers.CharField(max_length=200)
    base_url = serializers.URLField(max_length=500, required=False, default="", allow_blank=True)
    endpoint_kind = serializers.ChoiceField(choices=EndpointKind.values)
    access_medium = serializers.ChoiceField(choices=AccessMedium.values)
    auth_type = serializers.ChoiceField(
        choices=ChannelAuthType.ordered(), required=False, default=ChannelAuthType.USERNAME_PASSWORD
    )


class EndpointConfigInput(serializers.Serializer):
    """Known settings are typed; other keys are kept as they come (portal-specific)."""

    max_concurrency = serializers.IntegerField(min_value=1, max_value=1000, required=False)

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError("Expected an object.")
        if len(str(data)) > 16_384:
            raise serializers.ValidationError("Config is larger than 16 KB.")
        return {**data, **super().to_internal_value(data)}


class EndpointInput(StrictInputSerializer):
    name = serializers.CharField(max_length=200)
    channel_type = serializers.SlugField(
        max_length=64, help_text="The code of a channel type, e.g. anthem-availity."
    )
    base_url = serializers.URLField(max_length=500, required=False, default="", allow_blank=True)
    config = EndpointConfigInput(required=False)


class EndpointUpdateInput(StrictInputSerializer):
    name = serializers.CharField(max_length=200, required=False)
    base_url = serializers.URLField(max_length=500, required=False, allow_blank=True)
    config = EndpointConfigInput(required=False)


class EndpointOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    channel_type = serializers.CharField(source="channel_type.code")
    base_url = serializers.CharField()
    effective_base_url = serializers.CharField()
    config = serializers.JSONField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


# -- API keys and audit --------------------------------------------------------------------
class ApiKeyCreateInput(StrictInputSerializer):
    name = serializers.CharField(max_length=100)
    user_id = serializers.UUIDField(help_text="An api_user member of this organization.")


class ApiKeyOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    prefix = serializers.CharField()
    user_id = serializers.UUIDField()
    created_at = serializers.DateTimeField()
    last_used_at = serializers.DateTimeField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)


class ApiKeyCreatedOutput(ApiKeyOutput):
    key = serializers.CharField(help_text="Shown once; only its hash is stored.")


class AuditEventOutput(serializers.Serializer):
    id = serializers.IntegerField()
    actor_id = serializers.UUIDField(allow_null=True)
    actor_email = serializers.CharField()
    action = serializers.CharField()
    object_type = serializers.CharField()
    object_id = serializers.CharField()
    ip_address = serializers.CharField(allow_null=True)
    request_id = serializers.CharField()
    details = serializers.JSONField()
    created_at = serializers.DateTimeField()
    hash = serializers.CharField()
