from django.urls import path

from tenants import apis

urlpatterns = [
    path("auth/token/", apis.TokenApi.as_view(), name="auth-token"),
    path("auth/token/refresh/", apis.TokenRefreshApi.as_view(), name="auth-token-refresh"),
    path("auth/switch-org/", apis.SwitchOrgApi.as_view(), name="auth-switch-org"),
    path(
        "organizations/current/",
        apis.OrganizationCurrentApi.as_view(),
        name="organization-current",
    ),
    path("users/", apis.UserListApi.as_view(), name="user-list"),
    path("users/<uuid:pk>/", apis.UserDetailApi.as_view(), name="user-detail"),
    path("memberships/", apis.MembershipListApi.as_view(), name="membership-list"),
    path("memberships/<int:pk>/", apis.MembershipDetailApi.as_view(), name="membership-detail"),
    path("invitations/", apis.InvitationListApi.as_view(), name="invitation-list"),
    path("invitations/redeem/", apis.InvitationRedeemApi.as_view(), name="invitation-redeem"),
    path("invitations/<int:pk>/", apis.InvitationDetailApi.as_view(), name="invitation-detail"),
    path(
        "invitations/<int:pk>/resend/",
        apis.InvitationResendApi.as_view(),
        name="invitation-resend",
    ),
    path(
        "invitations/<int:pk>/revoke/",
        apis.InvitationRevokeApi.as_view(),
        name="invitation-revoke",
    ),
    path("me/invitations/", apis.MyInvitationListApi.as_view(), name="my-invitation-list"),
    path(
        "me/invitations/<int:pk>/accept/",
        apis.MyInvitationAcceptApi.as_view(),
        name="my-invitation-accept",
    ),
    path(
        "me/invitations/<int:pk>/decline/",
        apis.MyInvitationDeclineApi.as_view(),
        name="my-invitation-decline",
    ),
    path("channel-types/", apis.ChannelTypeListApi.as_view(), name="channel-type-list"),
    path(
        "channel-types/<int:pk>/", apis.ChannelTypeDetailApi.as_view(), name="channel-type-detail"
    ),
    path("endpoints/", apis.EndpointListApi.as_view(), name="endpoint-list"),
    path("endpoints/<int:pk>/", apis.EndpointDetailApi.as_view(), name="endpoint-detail"),
    path("api-keys/", apis.ApiKeyListApi.as_view(), name="api-key-list"),
    path("api-keys/<int:pk>/revoke/", apis.ApiKeyRevokeApi.as_view(), name="api-key-revoke"),
    path("audit-events/", apis.AuditEventListApi.as_view(), name="audit-event-list"),
]
