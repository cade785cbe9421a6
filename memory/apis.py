"""HTTP endpoints of the memory: the V2 micro-states API."""

from django.urls import path
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from memory import selectors, services
from memory import serializers as io
from memory.models import MicroState
from rcm.api.views import OrgScopedAPIView
from rcm.permissions import RUN, VIEW
from tenants import selectors as tenant_selectors
from workflows.selectors import authoring as workflow_selectors

UNKNOWN = "No {what} with this id."
NODE_WITHOUT_WORKFLOW = "A node is given with its workflow."


class MicroStateBase(OrgScopedAPIView):
    resource = "micro_state"

    def base_queryset(self):
        return MicroState.objects.all()

    def output_class(self, include_embedding: bool):
        return io.MicroStateWithEmbeddingOutput if include_embedding else io.MicroStateOutput


def _known(queryset, pk, field: str, what: str):
    """The organization's object with this id, or a 400 on the field (another organization's
    id reads exactly like one that does not exist)."""
    if pk is None:
        return None
    found = queryset.filter(pk=pk).first()
    if found is None:
        raise ValidationError({field: [UNKNOWN.format(what=what)]})
    return found


class MicroStateListCreateApi(MicroStateBase):
    def base_queryset(self):
        filters = self.validated_query(io.MicroStateListFilter)
        queryset = selectors.micro_state_list(
            workflow_id=filters.get("workflow"),
            node_id=filters.get("node"),
            endpoint_id=filters.get("endpoint"),
            is_retired=filters.get("is_retired"),
            since=filters.get("since"),
            until=filters.get("until"),
        )
        return queryset.defer(None) if filters["include_embedding"] else queryset

    @extend_schema(
        parameters=[io.MicroStateListFilter], responses={200: io.MicroStateOutput(many=True)}
    )
    def get(self, request):
        include = self.validated_query(io.MicroStateListFilter)["include_embedding"]
        return self.list_response(self.output_class(include))

    @extend_schema(
        request=io.MicroStateCreateInput,
        responses={
            201: io.MicroStateStoreOutput,
            200: OpenApiResponse(
                io.MicroStateStoreOutput,
                description="An equivalent state was stored already: it is reused, not added.",
            ),
        },
    )
    def post(self, request):
        data = self.validated(io.MicroStateCreateInput)
        workflow = _known(
            workflow_selectors.workflow_list(), data.get("workflow"), "workflow", "workflow"
        )
        node = None
        if data.get("node") is not None:
            if workflow is None:
                raise ValidationError({"node": [NODE_WITHOUT_WORKFLOW]})
            nodes = workflow_selectors.workflow_node_list(workflow=workflow)
            node = _known(nodes, data["node"], "node", "node in this workflow")
        endpoint = _known(
            tenant_selectors.endpoint_list(), data.get("endpoint"), "endpoint", "endpoint"
        )
        stored = services.micro_state_store(
            dom_snapshot=data["dom_snapshot"],
            action_json=data["action_json"],
            url=data["url"],
            url_pattern=data["url_pattern"],
            workflow=workflow,
            node=node,
            endpoint=endpoint,
            semantic_spec=data["semantic_spec"],
            label=data["label"],
            category=data["category"],
            required=data["required"],
            mini_score=data["mini_score"],
            text_emb=data.get("text_emb"),
            declared_phi=data["phi_values"],
            repaired=data["repaired"],
        )
        answer = (
            status.HTTP_201_CREATED if stored.decision != services.REUSED else status.HTTP_200_OK
        )
        return Response(io.MicroStateStoreOutput(stored).data, status=answer)


class MicroStateDetailApi(MicroStateBase):
    @extend_schema(parameters=[io.DetailQuery], responses={200: io.MicroStateOutput})
    def get(self, request, pk):
        include = self.validated_query(io.DetailQuery)["include_embedding"]
        return Response(self.output_class(include)(self.get_object()).data)


class MicroStateSearchApi(MicroStateBase):
    """A search reads: viewers may post it."""

    actions = {"POST": VIEW}

    @extend_schema(request=io.MicroStateSearchInput, responses={200: io.MicroStateSearchOutput})
    def post(self, request):
        data = self.validated(io.MicroStateSearchInput)
        vector, model_id = services.search_input_embed(
            text_emb=data.get("text_emb"),
            text=data.get("text"),
            dom_snapshot=data.get("dom_snapshot"),
            url=data["url"],
        )
        matches = selectors.micro_state_search(
            vector=vector,
            embedder=model_id,
            k=data["k"],
            threshold=data.get("threshold"),
            workflow_id=data.get("workflow"),
            node_id=data.get("node"),
            endpoint_id=data.get("endpoint"),
        )
        return Response(io.MicroStateSearchOutput({"results": matches}).data)


class MicroStateRetireApi(MicroStateBase):
    actions = {"POST": RUN}

    @extend_schema(request=io.MicroStateRetireInput, responses={200: io.MicroStateOutput})
    def post(self, request, pk):
        data = self.validated(io.MicroStateRetireInput)
        state = self.get_object()
        target = _known(self.get_queryset(), data.get("aliased_to"), "aliased_to", "state")
        state = services.micro_state_retire(state=state, aliased_to=target)
        return Response(io.MicroStateOutput(state).data)


class MicroStateUnretireApi(MicroStateBase):
    actions = {"POST": RUN}

    @extend_schema(request=None, responses={200: io.MicroStateOutput})
    def post(self, request, pk):
        state = services.micro_state_unretire(state=self.get_object())
        return Response(io.MicroStateOutput(state).data)


class MicroStateOutcomeApi(MicroStateBase):
    actions = {"POST": RUN}

    @extend_schema(request=io.MicroStateOutcomeInput, responses={200: io.MicroStateOutput})
    def post(self, request, pk):
        data = self.validated(io.MicroStateOutcomeInput)
        state = services.micro_state_outcome_record(
            state=self.get_object(), success=data["success"]
        )
        return Response(io.MicroStateOutput(state).data)


urlpatterns = [
    path("micro-states/", MicroStateListCreateApi.as_view(), name="micro-state-list"),
    path("micro-states/search/", MicroStateSearchApi.as_view(), name="micro-state-search"),
    path("micro-states/<int:pk>/", MicroStateDetailApi.as_view(), name="micro-state-detail"),
    path("micro-states/<int:pk>/retire/", MicroStateRetireApi.as_view(), name="micro-state-retire"),
    path(
        "micro-states/<int:pk>/unretire/",
        MicroStateUnretireApi.as_view(),
        name="micro-state-unretire",
    ),
    path(
        "micro-states/<int:pk>/outcome/", MicroStateOutcomeApi.as_view(), name="micro-state-outcome"
    ),
]
