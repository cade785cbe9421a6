"""Micro-states: the pages the web agent has met, each with the action that worked there."""

from django.db import models
from django.db.models import F, Q
from django.db.models.fields.json import HasKey
from pgvector.django import VectorField

from rcm.db.tenancy import TenantModel

DIMENSION = 768


class MicroState(TenantModel):
    """One page state an organization's agent has met: its masked DOM, the embedding search
    finds it by, the action that worked on it, and how well that action has done since.

    The table is partitioned by organization (see the migration and docs/memory.md): every
    search names one organization, and its partition's own HNSW index then serves it. For that
    the database's primary key is (org_id, micro_state_id) and ``aliased_to`` references it —
    a state is only ever aliased within its organization. Django sees ``id`` (the column
    micro_state_id, V8's name) as the key, which stays unique on its own (one sequence).

    ``text_emb`` is compared only with rows made by the same embedder (``embedder``): vectors
    from two models live in unrelated spaces.
    """

    id = models.BigAutoField(primary_key=True, db_column="micro_state_id")
    workflow = models.ForeignKey(
        "workflows.Workflow",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        db_column="workflow_id",
        related_name="+",
    )
    node = models.ForeignKey(
        "workflows.WorkflowNode",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        db_column="node_id",
        related_name="+",
    )
    endpoint = models.ForeignKey(
        "tenants.Endpoint",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    # Which step of the node the page was met at ("actions:3:click:…", webactions/agent.py):
    # one node acts on several pages, and one page may serve several of its actions. Built
    # from the workflow's own action list, never from a row's values.
    step_key = models.CharField(max_length=200, blank=True, default="")
    url_pattern = models.CharField(max_length=2000, blank=True, default="")
    # Masked (rcm.phi) before it is stored: the page as the agent saw it, minus patient data.
    dom_snapshot = models.TextField()
    action_json = models.JSONField()
    semantic_spec = models.JSONField(default=dict, blank=True)
    label = models.CharField(max_length=200, blank=True, default="")
    category = models.CharField(max_length=100, blank=True, default="")
    required = models.BooleanField(default=False)
    # A state whose action depends on values that change per visit (V8: dynamic_meta).
    is_dynamic = models.GeneratedField(
        expression=HasKey(F("semantic_spec"), "dynamic_meta"),
        output_field=models.BooleanField(),
        db_persist=True,
    )
    text_emb = VectorField(dimensions=DIMENSION)
    embedder = models.CharField(max_length=200)
    embedder_dimension = models.PositiveSmallIntegerField()
    mini_score = models.FloatField(default=1.0)
    success_count = models.PositiveIntegerField(default=0)
    failure_count = models.PositiveIntegerField(default=0)
    success_ema = models.FloatField(default=1.0)
    is_retired = models.BooleanField(default=False)
    # The state that replaced this one (its action had to be repaired on the same page).
    aliased_to = models.ForeignKey(
        "self",
        on_delete=models.DO_NOTHING,
        null=True,
        blank=True,
        db_constraint=False,  # the database's key is composite: (org_id, aliased_to)
        db_column="aliased_to",
        related_name="+",
    )
    last_hit_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "micro-state"
        verbose_name_plural = "micro-states"
        db_table = "micro_state"
        ordering = ["-created_at", "-id"]
        managed = True
        constraints = [
            models.CheckConstraint(
                condition=Q(mini_score__gte=0, mini_score__lte=1), name="micro_state_mini_score"
            ),
            models.CheckConstraint(
                condition=Q(success_ema__gte=0, success_ema__lte=1),
                name="micro_state_success_ema",
            ),
            models.CheckConstraint(
                condition=Q(embedder_dimension__gte=1, embedder_dimension__lte=DIMENSION),
                name="micro_state_embedder_dimension",
            ),
            models.CheckConstraint(
                condition=~Q(aliased_to=models.F("id")), name="micro_state_not_self_aliased"
            ),
        ]

    def __str__(self) -> str:
        return self.label or f"micro-state {self.pk}"
