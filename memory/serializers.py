"""Input and output serializers of the micro-states API."""

from rest_framework import serializers

from memory.embeddings import DIMENSION
from memory.selectors import MAX_K
from memory.services import embedding_problem
from rcm.api.serializers import PageQuery, StrictInputSerializer

MAX_ACTION_CHARS = 64_000
MAX_TEXT_CHARS = 100_000


class EmbeddingField(serializers.ListField):
    """Exactly 768 finite numbers (NaN and infinity refused, whatever the JSON parser let in)."""

    def __init__(self, **kwargs):
        super().__init__(
            child=serializers.FloatField(allow_null=False),
            min_length=DIMENSION,
            max_length=DIMENSION,
            **kwargs,
        )

    def to_internal_value(self, data):
        problem = embedding_problem(data)
        if problem:
            raise serializers.ValidationError(problem)
        return [float(value) for value in data]


def _json_size_check(value, limit: int, what: str):
    if len(str(value)) > limit:
        raise serializers.ValidationError(f"The {what} is larger than {limit} characters.")
    return value


class MicroStateCreateInput(StrictInputSerializer):
    # Emptiness and size are the service's checks (400 and 413), so that the API, the web
    # agent and the commands refuse alike.
    dom_snapshot = serializers.CharField(allow_blank=True, trim_whitespace=False)
    action_json = serializers.DictField(help_text="The action that worked on this page.")
    url = serializers.CharField(max_length=2000, required=False, default="")
    url_pattern = serializers.CharField(max_length=2000, required=False, default="")
    workflow = serializers.UUIDField(required=False, allow_null=True)
    node = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    endpoint = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    semantic_spec = serializers.DictField(required=False, default=dict)
    label = serializers.CharField(max_length=200, required=False, default="")
    category = serializers.CharField(max_length=100, required=False, default="")
    required = serializers.BooleanField(required=False, default=False)
    mini_score = serializers.FloatField(required=False, default=1.0, min_value=0, max_value=1)
    text_emb = EmbeddingField(
        required=False, help_text=f"Your own embedding: exactly {DIMENSION} finite numbers."
    )
    phi_values = serializers.ListField(
        child=serializers.CharField(max_length=500),
        required=False,
        default=list,
        max_length=500,
        help_text="Literal values on the page that are patient data (masked before storing).",
    )
    repaired = serializers.BooleanField(
        required=False,
        default=False,
        help_text="The remembered action had to be repaired on this page: the old state "
        "retires and this one replaces it.",
    )

    def validate_action_json(self, value):
        return _json_size_check(value, MAX_ACTION_CHARS, "action")

    def validate_semantic_spec(self, value):
        return _json_size_check(value, MAX_ACTION_CHARS, "semantic spec")


class MicroStateSearchInput(StrictInputSerializer):
    dom_snapshot = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    url = serializers.CharField(max_length=2000, required=False, default="")
    text = serializers.CharField(required=False, max_length=MAX_TEXT_CHARS)
    text_emb = EmbeddingField(required=False)
    k = serializers.IntegerField(required=False, default=10, min_value=1, max_value=MAX_K)
    threshold = serializers.FloatField(
        required=False,
        min_value=0,
        max_value=1,
        help_text="Leave out states less similar than this (cosine similarity).",
    )
    workflow = serializers.UUIDField(required=False)
    node = serializers.IntegerField(required=False, min_value=1)
    endpoint = serializers.IntegerField(required=False, min_value=1)

    def validate(self, attrs):
        given = [name for name in ("dom_snapshot", "text", "text_emb") if name in attrs]
        if len(given) != 1:
            raise serializers.ValidationError(
                {"non_field_errors": ["Give exactly one of dom_snapshot, text or text_emb."]}
            )
        return attrs


class MicroStateOutcomeInput(StrictInputSerializer):
    success = serializers.BooleanField()


class MicroStateRetireInput(StrictInputSerializer):
    aliased_to = serializers.IntegerField(required=False, allow_null=True, min_value=1)


class MicroStateListFilter(PageQuery):
    workflow = serializers.UUIDField(required=False)
    node = serializers.IntegerField(required=False, min_value=1)
    endpoint = serializers.IntegerField(required=False, min_value=1)
    is_retired = serializers.BooleanField(required=False, allow_null=True, default=None)
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)
    include_embedding = serializers.BooleanField(required=False, default=False)


class DetailQuery(StrictInputSerializer):
    include_embedding = serializers.BooleanField(required=False, default=False)


class MicroStateOutput(serializers.Serializer):
    id = serializers.IntegerField()
    workflow_id = serializers.UUIDField(allow_null=True)
    node_id = serializers.IntegerField(allow_null=True)
    endpoint_id = serializers.IntegerField(allow_null=True)
    step_key = serializers.CharField()
    url_pattern = serializers.CharField()
    dom_snapshot = serializers.CharField()
    action_json = serializers.JSONField()
    semantic_spec = serializers.JSONField()
    label = serializers.CharField()
    category = serializers.CharField()
    required = serializers.BooleanField()
    is_dynamic = serializers.BooleanField()
    mini_score = serializers.FloatField()
    success_count = serializers.IntegerField()
    failure_count = serializers.IntegerField()
    success_ema = serializers.FloatField()
    is_retired = serializers.BooleanField()
    aliased_to_id = serializers.IntegerField(allow_null=True)
    embedder = serializers.CharField()
    embedder_dimension = serializers.IntegerField()
    last_hit_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class MicroStateWithEmbeddingOutput(MicroStateOutput):
    text_emb = serializers.SerializerMethodField()

    def get_text_emb(self, state) -> list[float]:
        return [float(value) for value in state.text_emb]


class MicroStateStoreOutput(serializers.Serializer):
    decision = serializers.ChoiceField(choices=["inserted", "reused", "replaced"])
    similarity = serializers.FloatField(
        allow_null=True, help_text="To the nearest state of the same scope, if there was one."
    )
    state = MicroStateOutput()


class MicroStateMatchOutput(serializers.Serializer):
    similarity = serializers.FloatField()
    state = MicroStateOutput()


class MicroStateSearchOutput(serializers.Serializer):
    results = MicroStateMatchOutput(many=True, help_text="Most similar first; at most k.")
