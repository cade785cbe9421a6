"""HTTP endpoints of the tenants app: auth, organization, users, memberships, portals, API
keys and audit events. Views parse input, call one service or selector, serialize the result;
the organization, the role check and the scoping belong to OrgScopedAPIView."""

from __future__ import annotations

import uuid

from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, permissions, status
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import RefreshToken

from rcm.api.serializers import PageQuery
from rcm.api.views import OrgScopedAPIView
from rcm.context import org_context
from rcm.errors import ApplicationError
from rcm.http import client_ip
from rcm.permissions import RUN
from tenants import selectors, services, throttling
from tenants import serializers as io
from tenants.authentication import (
    INVALID_CREDENTIALS,
    MEMBERSHIP_GONE,
    TOKEN_INVALID,
    credentials_check,
    resolve_access,
    token_pair_for,
)
from tenants.models import ChannelType

NOT_A_MEMBER = "You are not an active member of this organization."
TOO_MANY_FAILURES = "Too many failed logins; try again later."
JWT_ONLY = "Switching organization needs a user token, not an API key."
JWT_ONLY_INVITEE = "Invitations are answered with a user token, not an API key."
UNKNOWN_CHANNEL = "No channel type has this code."


# -- auth ----------------------------------------------------------------------------------


class PublicAPIView(APIView):
    """Endpoints used before anyone is authenticated (log-in and token refresh)."""

    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]

    def get_authenticate_header(self, request):
        # Without it DRF turns a failed log-in into 403; a 401 must name the scheme.
        return 'Bearer realm="api"'


class TokenApi(PublicAPIView):
    @extend_schema(request=io.TokenInput, responses={200: io.TokenOutput}, auth=[])
    def post(self, request):
        data = _validated(io.TokenInput, request)
        ip = client_ip(request)
        email = data["email"]
        wait = throttling.login_retry_after(ip=ip, email=email)
        if wait is not None:
            raise exceptions.Throttled(wait=wait, detail=TOO_MANY_FAILURES)
        user = credentials_check(email=email, password=data["password"])
        access = resolve_access(user=user, org_id=data.get("org_id")) if user else None
        if access is None:
            services.login_failure_record(
                email=email,
                ip_address=ip,
                user=user,
                reason="credentials" if user is None else "organization",
                via="api",
            )
            raise exceptions.AuthenticationFailed(INVALID_CREDENTIALS, code="invalid_credentials")
        org_id, role, _ = access
        services.user_record_login(user=user, org_id=org_id)
        services.login_success_record(user=user, org_id=org_id, role=role, ip_address=ip, via="api")
        return Response(token_pair_for(user=user, org_id=org_id, role=role))


class TokenRefreshApi(PublicAPIView):
    """A new token pair for the same organization, with the membership's current role."""

    @extend_schema(request=io.RefreshInput, responses={200: io.TokenOutput}, auth=[])
    def post(self, request):
        data = _validated(io.RefreshInput, request)
        try:
            refresh = RefreshToken(data["refresh"])
            user_id, org_id = uuid.UUID(refresh["user_id"]), uuid.UUID(refresh["org_id"])
        except (TokenError, KeyError, ValueError) as exc:
            raise exceptions.AuthenticationFailed(TOKEN_INVALID, code="token_not_valid") from exc
        user = selectors.auth_user_by_id(user_id=user_id)
        access = resolve_access(user=user, org_id=org_id) if user and user.is_active else None
        if access is None:
            raise exceptions.AuthenticationFailed(MEMBERSHIP_GONE, code="membership_inactive")
        return Response(token_pair_for(user=user, org_id=access[0], role=access[1]))


class SwitchOrgApi(OrgScopedAPIView):
    resource = "session"
    tenant_scoped = False
    idempotency_redact = ("access", "refresh")

    @extend_schema(request=io.SwitchOrgInput, responses={200: io.TokenOutput})
    def post(self, request):
        data = self.validated(io.SwitchOrgInput)
        if self.access.via != "jwt":
            raise ApplicationError("jwt_required", JWT_ONLY, status=403)
        access = resolve_access(user=request.user, org_id=data["org_id"])
        if access is None:
            raise ApplicationError(
                "not_a_member", NOT_A_MEMBER, {"org_id": [NOT_A_MEMBER]}, status=403
            )
        org_id, role, _ = access
        with org_context(org_id):
            services.audit_event_record(
                action=services.AuditAction.ORG_SWITCH,
                org_id=org_id,
                actor=request.user,
                ip_address=client_ip(request),
                details={"from_org_id": str(self.org_id), "role": role},
            )
        return Response(token_pair_for(user=request.user, org_id=org_id, role=role))


def _validated(serializer_class, request) -> dict:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


# -- organization --------------------------------------------------------------------------


class OrganizationCurrentApi(OrgScopedAPIView):
    resource = "organization"

    def base_queryset(self):
        return selectors.organization_list()

    @extend_schema(responses={200: io.OrganizationOutput})
    def get(self, request):
        return Response(io.OrganizationOutput(self.get_queryset().get()).data)

    @extend_schema(request=io.OrganizationUpdateInput, responses={200: io.OrganizationOutput})
    def patch(self, request):
        data = self.validated(io.OrganizationUpdateInput)
        org = services.organization_update(
            org=self.get_queryset().get(), actor=request.user, ip_address=client_ip(request), **data
        )
        return Response(io.OrganizationOutput(org).data)


# -- users and memberships -----------------------------------------------------------------


class UserBase(OrgScopedAPIView):
    resource = "user"

    def base_queryset(self):
        return selectors.user_list(org_id=self.org_id)


class UserListApi(UserBase):
    @extend_schema(parameters=[PageQuery], responses={200: io.UserOutput(many=True)})
    def get(self, request):
        self.validated_query(PageQuery)
        return self.list_response(io.UserOutput)


class UserDetailApi(UserBase):
    @extend_schema(responses={200: io.UserOutput})
    def get(self, request, pk):
        return Response(io.UserOutput(self.get_object()).data)


class MembershipBase(OrgScopedAPIView):
    resource = "membership"

    def base_queryset(self):
        return selectors.membership_list()


class MembershipListApi(MembershipBase):
    @extend_schema(parameters=[PageQuery], responses={200: io.MembershipOutput(many=True)})
    def get(self, request):
        self.validated_query(PageQuery)
        return self.list_response(io.MembershipOutput)


class MembershipDetailApi(MembershipBase):
    @extend_schema(responses={200: io.MembershipOutput})
    def get(self, request, pk):
        return Response(io.MembershipOutput(self.get_object()).data)

    @extend_schema(request=io.MembershipUpdateInput, responses={200: io.MembershipOutput})
    def patch(self, request, pk):
        data = self.validated(io.MembershipUpdateInput)
        membership = services.membership_update(
            membership=self.get_object(),
            actor=request.user,
            actor_role=self.access.role,
            ip_address=client_ip(request),
            **data,
        )
        return Response(io.MembershipOutput(membership).data)

    @extend_schema(responses={204: None}, description="Deactivates the membership.")
    def delete(self, request, pk):
        services.membership_update(
            membership=self.get_object(),
            actor=request.user,
            actor_role=self.access.role,
            is_active=False,
            ip_address=client_ip(request),
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


# -- invitations ---------------------------------------------------------------------------


class InvitationBase(OrgScopedAPIView):
    """This organization's invitations: its admins alone see and send them."""

    resource = "invitation"

    def base_queryset(self):
        return selectors.invitation_list()


class InvitationListApi(InvitationBase):
    @extend_schema(parameters=[PageQuery], responses={200: io.InvitationOutput(many=True)})
    def get(self, request):
        self.validated_query(PageQuery)
        return self.list_response(io.InvitationOutput)

    @extend_schema(
        request=io.InvitationCreateInput,
        responses={202: io.InvitationOutput},
        description="Mails an invitation. The answer is the same whether or not an account "
        "exists for the email.",
    )
    def post(self, request):
        data = self.validated(io.InvitationCreateInput)
        invitation = services.invitation_create(
            org_id=self.org_id,
            actor=request.user,
            actor_role=self.access.role,
            email=data["email"],
            role=data["role"],
            ip_address=client_ip(request),
        )
        return Response(io.InvitationOutput(invitation).data, status=status.HTTP_202_ACCEPTED)


class InvitationDetailApi(InvitationBase):
    @extend_schema(responses={200: io.InvitationOutput})
    def get(self, request, pk):
        return Response(io.InvitationOutput(self.get_object()).data)


class InvitationResendApi(InvitationBase):
    actions = {"POST": RUN}

    @extend_schema(request=None, responses={202: io.InvitationOutput})
    def post(self, request, pk):
        invitation = services.invitation_resend(
            invitation=self.get_object(), actor=request.user, ip_address=client_ip(request)
        )
        return Response(io.InvitationOutput(invitation).data, status=status.HTTP_202_ACCEPTED)


class InvitationRevokeApi(InvitationBase):
    actions = {"POST": RUN}

    @extend_schema(request=None, responses={200: io.InvitationOutput})
    def post(self, request, pk):
        invitation = services.invitation_revoke(
            invitation=self.get_object(), actor=request.user, ip_address=client_ip(request)
        )
        return Response(io.InvitationOutput(invitation).data)


class MyInvitationBase(OrgScopedAPIView):
    """The caller's own invitations, from any organization. They act for themselves, not in
    the organization of their token: nothing is read from it, and the only cross-organization
    rows they see are invitations to their own email (a SECURITY DEFINER function)."""

    resource = "session"  # the caller's own account
    tenant_scoped = False
    actions = {"POST": RUN}

    def invitee(self):
        """The person answering: a user token's, never an API key's (a machine is invited to
        nothing)."""
        if self.access.via != "jwt":
            raise ApplicationError("jwt_required", JWT_ONLY_INVITEE, status=403)
        return self.request.user

    def invitation(self, pk: int) -> selectors.InvitationInfo:
        invitation = selectors.invitation_of_user(user=self.invitee(), invitation_id=pk)
        if invitation is None:
            raise exceptions.NotFound()
        return invitation


class MyInvitationListApi(MyInvitationBase):
    @extend_schema(responses={200: io.MyInvitationListOutput})
    def get(self, request):
        invitations = selectors.invitations_open_for_user(user=self.invitee())
        return Response(io.MyInvitationListOutput({"results": invitations}).data)


class MyInvitationAcceptApi(MyInvitationBase):
    @extend_schema(request=None, responses={200: io.MembershipOutput})
    def post(self, request, pk):
        membership = services.invitation_accept(
            invitation=self.invitation(pk), user=request.user, ip_address=client_ip(request)
        )
        return Response(io.MembershipOutput(membership).data)


class MyInvitationDeclineApi(MyInvitationBase):
    @extend_schema(request=None, responses={204: None})
    def post(self, request, pk):
        services.invitation_decline(
            invitation=self.invitation(pk), user=request.user, ip_address=client_ip(request)
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class InvitationRedeemApi(PublicAPIView):
    """A person without an account redeems the mailed token. Wrong tokens are throttled per
    client IP like failed log-ins."""

    @extend_schema(
        request=io.InvitationRedeemInput, responses={201: io.InvitationRedeemOutput}, auth=[]
    )
    def post(self, request):
        ip = client_ip(request)
        wait = throttling.redeem_retry_after(ip=ip)
        if wait is not None:
            raise exceptions.Throttled(wait=wait, detail=throttling.REDEEM_THROTTLED)
        data = _validated(io.InvitationRedeemInput, request)
        try:
            user = services.invitation_redeem(ip_address=ip, **data)
        except ApplicationError as error:
            if error.code == "invitation_invalid":
                throttling.redeem_failure_record(ip=ip)
            raise
        return Response(io.InvitationRedeemOutput(user).data, status=status.HTTP_201_CREATED)


# -- portals -------------------------------------------------------------------------------


class ChannelTypeBase(OrgScopedAPIView):
    """The platform's portal catalogue: every member reads it, platform staff change it."""

    resource = "channel_type"
    tenant_scoped = False

    def base_queryset(self):
        return selectors.channel_type_list()


class ChannelTypeListApi(ChannelTypeBase):
    @extend_schema(parameters=[PageQuery], responses={200: io.ChannelTypeOutput(many=True)})
    def get(self, request):
        self.validated_query(PageQuery)
        return self.list_response(io.ChannelTypeOutput)

    @extend_schema(request=io.ChannelTypeInput, responses={201: io.ChannelTypeOutput})
    def post(self, request):
        data = self.validated(io.ChannelTypeInput)
        channel_type = services.channel_type_create(
            code=data["code"],
            name=data["name"],
            base_url=data["base_url"],
            endpoint_kind=data["endpoint_kind"],
            access_medium=data["access_medium"],
            auth_type_id=data["auth_type"],
        )
        return Response(io.ChannelTypeOutput(channel_type).data, status=status.HTTP_201_CREATED)


class ChannelTypeDetailApi(ChannelTypeBase):
    @extend_schema(responses={200: io.ChannelTypeOutput})
    def get(self, request, pk):
        return Response(io.ChannelTypeOutput(self.get_object()).data)

    @extend_schema(request=io.ChannelTypeUpdateInput, responses={200: io.ChannelTypeOutput})
    def patch(self, request, pk):
        data = self.validated(io.ChannelTypeUpdateInput)
        channel_type = services.channel_type_update(channel_type=self.get_object(), **data)
        return Response(io.ChannelTypeOutput(channel_type).data)


class EndpointBase(OrgScopedAPIView):
    resource = "endpoint"

    def base_queryset(self):
        return selectors.endpoint_list()


class EndpointListApi(EndpointBase):
    @extend_schema(parameters=[PageQuery], responses={200: io.EndpointOutput(many=True)})
    def get(self, request):
        self.validated_query(PageQuery)
        return self.list_response(io.EndpointOutput)

    @extend_schema(request=io.EndpointInput, responses={201: io.EndpointOutput})
    def post(self, request):
        data = self.validated(io.EndpointInput)
        endpoint = services.endpoint_create(
            org_id=self.org_id,
            actor=request.user,
            name=data["name"],
            channel_type=_channel_type(data["channel_type"]),
            base_url=data["base_url"],
            config=data.get("config"),
        )
        return Response(io.EndpointOutput(endpoint).data, status=status.HTTP_201_CREATED)


class EndpointDetailApi(EndpointBase):
    @extend_schema(responses={200: io.EndpointOutput})
    def get(self, request, pk):
        return Response(io.EndpointOutput(self.get_object()).data)

    @extend_schema(request=io.EndpointUpdateInput, responses={200: io.EndpointOutput})
    def patch(self, request, pk):
        data = self.validated(io.EndpointUpdateInput)
        endpoint = services.endpoint_update(endpoint=self.get_object(), actor=request.user, **data)
        return Response(io.EndpointOutput(endpoint).data)

    @extend_schema(responses={204: None})
    def delete(self, request, pk):
        services.endpoint_delete(endpoint=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


def _channel_type(code: str) -> ChannelType:
    channel_type = selectors.channel_type_list().filter(code=code).first()
    if channel_type is None:
        raise ApplicationError("invalid", UNKNOWN_CHANNEL, {"channel_type": [UNKNOWN_CHANNEL]})
    return channel_type


# -- API keys and audit --------------------------------------------------------------------


class ApiKeyBase(OrgScopedAPIView):
    resource = "api_key"

    def base_queryset(self):
        return selectors.api_key_list()


class ApiKeyListApi(ApiKeyBase):
    idempotency_redact = ("key",)

    @extend_schema(parameters=[PageQuery], responses={200: io.ApiKeyOutput(many=True)})
    def get(self, request):
        self.validated_query(PageQuery)
        return self.list_response(io.ApiKeyOutput)

    @extend_schema(request=io.ApiKeyCreateInput, responses={201: io.ApiKeyCreatedOutput})
    def post(self, request):
        data = self.validated(io.ApiKeyCreateInput)
        user = selectors.user_list(org_id=self.org_id).filter(pk=data["user_id"]).first()
        if user is None:
            raise ApplicationError(
                "not_api_user",
                services.NOT_API_USER,
                {"user_id": [services.NOT_API_USER]},
            )
        api_key, key = services.api_key_create(
            org_id=self.org_id,
            user=user,
            name=data["name"],
            created_by=request.user,
            ip_address=client_ip(request),
        )
        api_key.key = key
        return Response(io.ApiKeyCreatedOutput(api_key).data, status=status.HTTP_201_CREATED)


class ApiKeyRevokeApi(ApiKeyBase):
    actions = {"POST": RUN}

    @extend_schema(request=None, responses={200: io.ApiKeyOutput})
    def post(self, request, pk):
        api_key = services.api_key_revoke(
            api_key=self.get_object(), actor=request.user, ip_address=client_ip(request)
        )
        return Response(io.ApiKeyOutput(api_key).data)


class AuditEventListApi(OrgScopedAPIView):
    resource = "audit_event"

    def base_queryset(self):
        return selectors.audit_event_list()

    @extend_schema(parameters=[PageQuery], responses={200: io.AuditEventOutput(many=True)})
    def get(self, request):
        self.validated_query(PageQuery)
        return self.list_response(io.AuditEventOutput)
