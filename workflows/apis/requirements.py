"""HTTP endpoints of requirements: the task catalogue, the effective fields of a task and the
check of a row against them, the organization's policies, the payers' requirements and the
changelog. Views parse input, call one service or selector, serialize the result; the
organization, the role check and the scoping belong to OrgScopedAPIView."""

from __future__ import annotations

from datetime import date

from django.urls import path
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response

from rcm.api.pagination import CreatedCursorPagination
from rcm.api.serializers import PageQuery
from rcm.api.views import OrgScopedAPIView
from rcm.errors import ApplicationError, NotFound
from rcm.permissions import VIEW
from tenants import selectors as tenant_selectors
from tenants.models import Endpoint
from workflows.models import TaskType
from workflows.selectors import requirements as selectors
from workflows.serializers import requirements as io
from workflows.services import requirements as services
from workflows.validation.fields import EffectiveField
from workflows.validation.rows import requirements_validate

UNKNOWN_TASK_TYPE = "No task type has this id or domain/action."
UNKNOWN_CHANNEL = "No channel type has this code."


class RequirementsAPIView(OrgScopedAPIView):
    # Shared parsing: query strings, task types and endpoints named by the caller. (A comment,
    # not a docstring: the schema would show it as every subclass's description.)

    @staticmethod
    def task_type(ref: str, *, name: str = "task_type") -> TaskType:
        task_type = selectors.task_type_find(ref=ref)
        if task_type is None:
            raise ApplicationError("invalid", UNKNOWN_TASK_TYPE, {name: [UNKNOWN_TASK_TYPE]})
        return task_type

    @staticmethod
    def endpoint(endpoint_id: int | None) -> Endpoint | None:
        """The organization's endpoint; another organization's is not found, like a new id."""
        if endpoint_id is None:
            return None
        endpoint = tenant_selectors.endpoint_list().filter(pk=endpoint_id).first()
        if endpoint is None:
            raise NotFound("not_found", "Not found.")
        return endpoint


# -- task types ----------------------------------------------------------------------------


class TaskTypeBase(RequirementsAPIView):
    # The platform's task catalogue: every member reads it.

    resource = "task_type"
    tenant_scoped = False

    def base_queryset(self):
        return selectors.task_type_list()


class TaskTypeListApi(TaskTypeBase):
    """The task catalogue (eligibility/check, prior_auth/submit, ...)."""

    @extend_schema(parameters=[PageQuery], responses={200: io.TaskTypeOutput(many=True)})
    def get(self, request):
        self.validated_query(PageQuery)
        return self.list_response(io.TaskTypeOutput)


class TaskTypeDetailApi(TaskTypeBase):
    """One task type with the platform's field requirements."""

    def base_queryset(self):
        return selectors.task_type_detail_list()

    @extend_schema(responses={200: io.TaskTypeDetailOutput})
    def get(self, request, pk):
        return Response(io.TaskTypeDetailOutput(self.get_object()).data)


# -- effective requirements ----------------------------------------------------------------


class EffectiveBase(RequirementsAPIView):
    # The effective set both endpoints below start from.

    resource = "requirement"

    def resolve(self, data: dict) -> tuple[TaskType, Endpoint | None, date, list[EffectiveField]]:
        task_type = self.task_type(data["task_type"])
        endpoint = self.endpoint(data.get("endpoint"))
        as_of = data.get("as_of") or timezone.localdate()
        fields = selectors.requirements_effective(
            org_id=self.org_id, task_type=task_type, endpoint=endpoint, as_of=as_of
        )
        return task_type, endpoint, as_of, fields


class RequirementsEffectiveApi(EffectiveBase):
    """The fields the organization must supply for a task, on an endpoint, on a date."""

    @extend_schema(
        parameters=[io.RequirementsEffectiveQuery], responses={200: io.RequirementsEffectiveOutput}
    )
    def get(self, request):
        task_type, endpoint, as_of, fields = self.resolve(
            self.validated_query(io.RequirementsEffectiveQuery)
        )
        body = {
            "task_type": task_type.pk,
            "endpoint": endpoint.pk if endpoint else None,
            "as_of": as_of,
            "fields": fields,
        }
        return Response(io.RequirementsEffectiveOutput(body).data)


class RequirementsValidateApi(EffectiveBase):
    """Checks one row; the answer is the check, so a bad row is still a 200."""

    actions = {"POST": VIEW}

    @extend_schema(
        request=io.RequirementsValidateInput, responses={200: io.RequirementsValidateOutput}
    )
    def post(self, request):
        data = self.validated(io.RequirementsValidateInput)
        *_, fields = self.resolve(data)
        result = requirements_validate(fields=fields, row=data["row"])
        return Response(io.RequirementsValidateOutput(result.as_dict()).data)


# -- organization policies -----------------------------------------------------------------


class PolicyBase(RequirementsAPIView):
    # The organization's own add/remove/modify rules; org_admin writes them.

    resource = "requirement_policy"

    def base_queryset(self):
        return selectors.org_policy_list()


class PolicyListApi(PolicyBase):
    """The organization's requirement policies; org_admin adds one."""

    @extend_schema(
        parameters=[io.RequirementPolicyListQuery],
        responses={200: io.RequirementPolicyOutput(many=True)},
    )
    def get(self, request):
        data = self.validated_query(io.RequirementPolicyListQuery)
        task_type = self.task_type(data["task_type"]) if "task_type" in data else None
        policies = selectors.org_policy_list(task_type=task_type, endpoint_id=data.get("endpoint"))
        return self.list_response(io.RequirementPolicyOutput, self.get_queryset() & policies)

    @extend_schema(
        request=io.RequirementPolicyCreateInput, responses={201: io.RequirementPolicyOutput}
    )
    def post(self, request):
        data = self.validated(io.RequirementPolicyCreateInput)
        policy = services.org_policy_create(
            org_id=self.org_id,
            task_type=self.task_type(data["task_type"]),
            endpoint=self.endpoint(data.get("endpoint")),
            field_name=data["field_name"],
            operation=data["operation"],
            spec=data["spec"],
            effective_date=data["effective_date"],
            end_date=data.get("end_date"),
            reason=data["reason"],
            approved_by_id=data.get("approved_by"),
            actor=request.user,
        )
        return Response(io.RequirementPolicyOutput(policy).data, status=status.HTTP_201_CREATED)


class PolicyDetailApi(PolicyBase):
    """One policy; org_admin changes or deletes it (each change is in the changelog)."""

    @extend_schema(responses={200: io.RequirementPolicyOutput})
    def get(self, request, pk):
        return Response(io.RequirementPolicyOutput(self.get_object()).data)

    @extend_schema(
        request=io.RequirementPolicyUpdateInput, responses={200: io.RequirementPolicyOutput}
    )
    def patch(self, request, pk):
        policy = self.get_object()
        changes = dict(self.validated(io.RequirementPolicyUpdateInput))
        reason = changes.pop("reason")
        if "endpoint" in changes:
            changes["endpoint"] = self.endpoint(changes["endpoint"])
        if "approved_by" in changes:
            changes["approved_by_id"] = changes.pop("approved_by")
        policy = services.org_policy_update(
            policy=policy, actor=request.user, reason=reason, **changes
        )
        return Response(io.RequirementPolicyOutput(policy).data)

    @extend_schema(request=io.RequirementPolicyDeleteInput, responses={204: None})
    def delete(self, request, pk):
        policy = self.get_object()
        data = self.validated(io.RequirementPolicyDeleteInput)
        services.org_policy_delete(policy=policy, actor=request.user, reason=data["reason"])
        return Response(status=status.HTTP_204_NO_CONTENT)


# -- payer requirements --------------------------------------------------------------------


class PayerBase(RequirementsAPIView):
    # The payers' requirements: a platform catalogue every member reads and staff extend.

    resource = "payer_requirement"
    tenant_scoped = False

    def base_queryset(self):
        return selectors.payer_requirement_list()


class PayerListApi(PayerBase):
    """What each payer adds or tightens, versioned; sys_admin adds a version."""

    @extend_schema(
        parameters=[io.PayerRequirementListQuery],
        responses={200: io.PayerRequirementOutput(many=True)},
    )
    def get(self, request):
        data = self.validated_query(io.PayerRequirementListQuery)
        rows = selectors.payer_requirement_list(
            channel_type_code=data.get("channel_type"),
            task_type=self.task_type(data["task_type"]) if "task_type" in data else None,
            as_of=data.get("as_of"),
        )
        return self.list_response(io.PayerRequirementOutput, rows)

    @extend_schema(
        request=io.PayerRequirementCreateInput, responses={201: io.PayerRequirementOutput}
    )
    def post(self, request):
        data = self.validated(io.PayerRequirementCreateInput)
        channel_type = (
            tenant_selectors.channel_type_list().filter(code=data["channel_type"]).first()
        )
        if channel_type is None:
            raise ApplicationError("invalid", UNKNOWN_CHANNEL, {"channel_type": [UNKNOWN_CHANNEL]})
        row = services.payer_requirement_create(
            channel_type=channel_type,
            task_type=self.task_type(data["task_type"]),
            field_name=data["field_name"],
            spec={key: data[key] for key in services.SPEC_KEYS if key in data},
            effective_date=data["effective_date"],
            end_date=data.get("end_date"),
            reason=data["reason"],
            actor=request.user,
        )
        return Response(io.PayerRequirementOutput(row).data, status=status.HTTP_201_CREATED)


class PayerDetailApi(PayerBase):
    """One version of a payer requirement."""

    @extend_schema(responses={200: io.PayerRequirementOutput})
    def get(self, request, pk):
        return Response(io.PayerRequirementOutput(self.get_object()).data)


# -- changelog -----------------------------------------------------------------------------


class ChangedCursorPagination(CreatedCursorPagination):
    ordering = ("-changed_at", "-pk")


class ChangelogListApi(RequirementsAPIView):
    """Every change to the organization's policies and to the payers' requirements."""

    resource = "requirement_changelog"
    pagination_class = ChangedCursorPagination

    def base_queryset(self):
        return selectors.requirement_changelog_list()

    @extend_schema(
        parameters=[PageQuery], responses={200: io.RequirementChangelogOutput(many=True)}
    )
    def get(self, request):
        self.validated_query(PageQuery)
        return self.list_response(io.RequirementChangelogOutput)


urlpatterns = [
    path("task-types/", TaskTypeListApi.as_view(), name="task-type-list"),
    path("task-types/<uuid:pk>/", TaskTypeDetailApi.as_view(), name="task-type-detail"),
    path(
        "requirements/effective/",
        RequirementsEffectiveApi.as_view(),
        name="requirements-effective",
    ),
    path("requirements/validate/", RequirementsValidateApi.as_view(), name="requirements-validate"),
    path("requirement-policies/", PolicyListApi.as_view(), name="requirement-policy-list"),
    path(
        "requirement-policies/<int:pk>/",
        PolicyDetailApi.as_view(),
        name="requirement-policy-detail",
    ),
    path("payer-requirements/", PayerListApi.as_view(), name="payer-requirement-list"),
    path(
        "payer-requirements/<int:pk>/",
        PayerDetailApi.as_view(),
        name="payer-requirement-detail",
    ),
    path("requirement-changelog/", ChangelogListApi.as_view(), name="requirement-changelog-list"),
]
