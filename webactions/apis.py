"""HTTP endpoints of the web-actions app: portal credentials (CRUD without secrets,
rotation, validation, the access log), ad-hoc web actions and their screenshots."""

from django.conf import settings
from django.http import HttpResponse
from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response

from rcm import messaging
from rcm.api.serializers import PageQuery
from rcm.api.views import OrgScopedAPIView
from rcm.http import client_ip
from rcm.permissions import RUN
from webactions import selectors
from webactions import serializers as io
from webactions.services import attempts, web_actions
from webactions.services import credentials as credential_services
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
        credential = credential_services.credential_create(
            org_id=self.org_id, actor=request.user, **data
        )
        return Response(io.CredentialOutput(credential).data, status=status.HTTP_201_CREATED)


class CredentialDetailApi(CredentialBase):
    @extend_schema(responses={200: io.CredentialOutput})
    def get(self, request, pk):
        return Response(io.CredentialOutput(self.get_object()).data)

    @extend_schema(request=io.CredentialUpdateInput, responses={200: io.CredentialOutput})
    def patch(self, request, pk):
        data = self.validated(io.CredentialUpdateInput)
        credential = credential_services.credential_update(
            credential=self.get_object(), actor=request.user, **data
        )
        return Response(io.CredentialOutput(credential).data)

    @extend_schema(responses={204: None})
    def delete(self, request, pk):
        credential_services.credential_delete(credential=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class CredentialRotateApi(CredentialBase):
    actions = {"POST": RUN}

    @extend_schema(request=io.CredentialRotateInput, responses={200: io.CredentialOutput})
    def post(self, request, pk):
        data = self.validated(io.CredentialRotateInput)
        credential = credential_services.credential_rotate(
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
        credential_services.credential_validate_check(credential=credential)
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


class WebActionBase(OrgScopedAPIView):
    resource = "web_action"

    def base_queryset(self):
        return selectors.web_action_list()

    def detail(self, web_action, status_code=status.HTTP_200_OK) -> Response:
        screenshots = selectors.web_action_screenshots(web_action=web_action)
        data = io.WebActionDetailOutput(web_action, context={"screenshots": screenshots}).data
        return Response(data, status=status_code)


class WebActionListApi(WebActionBase):
    @extend_schema(parameters=[io.WebActionFilter], responses={200: io.WebActionOutput(many=True)})
    def get(self, request):
        filters = self.validated_query(io.WebActionFilter)
        found = self.get_queryset()
        if "status" in filters:
            found = found.filter(status=filters["status"])
        return self.list_response(io.WebActionOutput, found)

    @extend_schema(request=io.WebActionInput, responses={202: io.WebActionDetailOutput})
    def post(self, request):
        """Run an action list on one of the organization's endpoints, in the background on
        the browser queue; poll the answer's id for its status, results and screenshots."""
        data = self.validated(io.WebActionInput)
        web_action = web_actions.web_action_create(org_id=self.org_id, actor=request.user, **data)
        return self.detail(web_action, status.HTTP_202_ACCEPTED)


class WebActionDetailApi(WebActionBase):
    @extend_schema(responses={200: io.WebActionDetailOutput})
    def get(self, request, pk):
        return self.detail(self.get_object())


class WebActionCancelApi(WebActionBase):
    actions = {"POST": RUN}

    @extend_schema(request=None, responses={200: io.WebActionDetailOutput})
    def post(self, request, pk):
        return self.detail(web_actions.web_action_cancel(web_action=self.get_object()))


class ScreenshotBase(OrgScopedAPIView):
    resource = "web_screenshot"

    def base_queryset(self):
        return selectors.screenshot_list()


class ScreenshotListApi(ScreenshotBase):
    @extend_schema(
        parameters=[io.ScreenshotFilter], responses={200: io.ScreenshotOutput(many=True)}
    )
    def get(self, request):
        filters = self.validated_query(io.ScreenshotFilter)
        found = self.get_queryset()
        if "web_action" in filters:
            found = found.filter(web_action_id=filters["web_action"])
        if "node_run" in filters:
            found = found.filter(node_run_id=filters["node_run"])
        if "run" in filters:
            found = found.filter(node_run__run_id=filters["run"])
        return self.list_response(io.ScreenshotOutput, found)


class ScreenshotDetailApi(ScreenshotBase):
    @extend_schema(responses={200: io.ScreenshotDetailOutput})
    def get(self, request, pk):
        screenshot = self.get_object()
        return Response(io.ScreenshotDetailOutput(screenshot).data)


class ScreenshotImageApi(ScreenshotBase):
    """The picture itself (PHI): each fetch is an audit event (``screenshot.viewed``)."""

    @extend_schema(
        responses={(200, "image/png"): OpenApiResponse(OpenApiTypes.BINARY, description="PNG")}
    )
    def get(self, request, pk):
        screenshot = self.get_object()
        image = attempts.screenshot_image(
            screenshot=screenshot, actor=request.user, ip_address=client_ip(request)
        )
        response = HttpResponse(image, content_type="image/png")
        # PHI: no shared cache may keep it, and the browser keeps it no longer than the page.
        response["Cache-Control"] = "private, no-store"
        response["Content-Disposition"] = f'inline; filename="screenshot-{screenshot.pk}.png"'
        return response


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
    path("web-actions/", WebActionListApi.as_view(), name="web-action-list"),
    path("web-actions/<int:pk>/", WebActionDetailApi.as_view(), name="web-action-detail"),
    path("web-actions/<int:pk>/cancel/", WebActionCancelApi.as_view(), name="web-action-cancel"),
    path("screenshots/", ScreenshotListApi.as_view(), name="screenshot-list"),
    path("screenshots/<int:pk>/", ScreenshotDetailApi.as_view(), name="screenshot-detail"),
    path("screenshots/<int:pk>/image/", ScreenshotImageApi.as_view(), name="screenshot-image"),
]
