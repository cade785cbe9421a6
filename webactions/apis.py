"""HTTP endpoints of portal credentials: CRUD without secrets, rotation, the access log."""

from django.conf import settings
from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response

from rcm import messaging
from rcm.api.serializers import PageQuery
from rcm.api.views import OrgScopedAPIView
from rcm.permissions import RUN
from webactions import selectors, services
from webactions import serializers as io
from webactions.tasks import credential_validate_task


class CredentialBase(OrgScopedAPIView):
    resource = "portal_credential"

    def base_queryset(self):
        return selectors.credential_list()


class CredentialListApi(CredentialBase):
    @extend_schema(
        parameters=[io.CredentialFilter], responses={200: io.CredentialOutput(many=True)}
    )
    def get(self, request):
        filters = self.validated_query(io.CredentialFilter)
        credentials = self.get_queryset()
        if "endpoint_id" in filters:
            credentials = credentials.filter(endpoint_id=filters["endpoint_id"])
        return self.list_response(io.CredentialOutput, credentials)

    @extend_schema(request=io.CredentialInput, responses={201: io.CredentialOutput})
    def post(self, request):
        data = self.validated(io.CredentialInput)
        credential = services.credential_create(org_id=self.org_id, actor=request.user, **data)
        return Response(io.CredentialOutput(credential).data, status=status.HTTP_201_CREATED)


class CredentialDetailApi(CredentialBase):
    @extend_schema(responses={200: io.CredentialOutput})
    def get(self, request, pk):
        return Response(io.CredentialOutput(self.get_object()).data)

    @extend_schema(request=io.CredentialUpdateInput, responses={200: io.CredentialOutput})
    def patch(self, request, pk):
        data = self.validated(io.CredentialUpdateInput)
        credential = services.credential_update(
            credential=self.get_object(), actor=request.user, **data
        )
        return Response(io.CredentialOutput(credential).data)

    @extend_schema(responses={204: None})
    def delete(self, request, pk):
        services.credential_delete(credential=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class CredentialRotateApi(CredentialBase):
    actions = {"POST": RUN}

    @extend_schema(request=io.CredentialRotateInput, responses={200: io.CredentialOutput})
    def post(self, request, pk):
        data = self.validated(io.CredentialRotateInput)
        credential = services.credential_rotate(
            credential=self.get_object(), actor=request.user, secrets=data["secrets"]
        )
        return Response(io.CredentialOutput(credential).data)


class CredentialValidateApi(CredentialBase):
    """Log in with the credential, in the background on the browser queue; the outcome lands in
    ``last_validated_at`` and ``validation_error`` (and the access log)."""

    actions = {"POST": RUN}

    @extend_schema(request=None, responses={202: io.CredentialOutput})
    def post(self, request, pk):
        credential = self.get_object()
        services.credential_validate_check(credential=credential)
        messaging.send_after_commit(
            credential_validate_task,
            kwargs={
                "org_id": str(self.org_id),
                "credential_id": credential.pk,
                "user_id": str(request.user.pk),
            },
            queue=settings.CELERY_WEB_QUEUE,
        )
        return Response(io.CredentialOutput(credential).data, status=status.HTTP_202_ACCEPTED)


class CredentialAccessListApi(CredentialBase):
    """Who touched this credential's secrets, newest first (kept after it is deleted)."""

    resource = "credential_access_log"

    @extend_schema(parameters=[PageQuery], responses={200: io.CredentialAccessOutput(many=True)})
    def get(self, request, pk):
        self.validated_query(PageQuery)
        credential = self.get_object()
        accesses = selectors.credential_access_list(credential_id=credential.pk)
        return self.list_response(io.CredentialAccessOutput, accesses)


urlpatterns = [
    path("credentials/", CredentialListApi.as_view(), name="credential-list"),
    path("credentials/<int:pk>/", CredentialDetailApi.as_view(), name="credential-detail"),
    path("credentials/<int:pk>/rotate/", CredentialRotateApi.as_view(), name="credential-rotate"),
    path(
        "credentials/<int:pk>/validate/",
        CredentialValidateApi.as_view(),
        name="credential-validate",
    ),
    path(
        "credentials/<int:pk>/accesses/",
        CredentialAccessListApi.as_view(),
        name="credential-accesses",
    ),
]
