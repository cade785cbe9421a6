"""v3's page memory (rcm_state, rcm_transition) as V8 workflows, nodes and micro-states.

V8 states belong to a workflow node; v3 states belong to a portal. So each imported endpoint
gets an archived "legacy memory" workflow, and in it:

- one ``general`` node of kind ``web`` per v3 state (key ``state-<state id>``), its captions
  in ``label_conf``;
- one transition per v3 state transition, labelled by its action caption (masked, and known
  to the map by a digest of it), with its ``freq``.
  v3's graphs have cycles (a page that leads back to an earlier one), which V8 refuses only
  when a workflow is published; this one never is, so they are kept as they are. What V8
  refuses in any draft is refused here with V8's own check (a state that loops on itself, a
  label of more than 64 characters is shortened first);
- one micro-state per v3 state that has an embedding, on that node and endpoint: its action,
  spec and caption masked like every stored page (rcm.phi), its 768 numbers normalised like
  a caller's embedding, under the embedder name ``v3-legacy`` so that search never compares
  them with vectors of another model.

The batch jobs of the endpoint hang on the same workflow (a batch job needs one), through
a revision the import writes with an empty graph: the v3 system ran those rows, not V8.

Archived, the workflow can never be edited, published or run; the import alone writes its
nodes, in bulk (dbadmin/legacy/tables.py), since the editing services refuse an archived draft.
"""

from __future__ import annotations

import hashlib
import json
from functools import partial

from django.db import transaction

from dbadmin.legacy.idmap import Entry, digest
from dbadmin.legacy.tables import BulkTable, Rejected, Skipped, aliases_link
from memory.models import DIMENSION, MicroState
from memory.services import embedding_normalised
from rcm.errors import ApplicationError
from tenants.models import Endpoint
from webactions.kinds import WebKind
from workflows.models import (
    NodeType,
    TriggerRule,
    Workflow,
    WorkflowNode,
    WorkflowRevision,
    WorkflowTransition,
)
from workflows.public import Edge
from workflows.services import authoring
from workflows.validation.graph import MAX_LABEL_LENGTH, edge_problems

WORKFLOW_PATH, NODE_PATH, STATE_PATH = "legacy_workflow", "state_node", "micro_state"
TRANSITION_PATH = "rcm_transition"
EMBEDDER = "v3-legacy"
WORKFLOW_NAME = "Legacy memory: {name} (v3 portal {portal_id})"
WORKFLOW_DESCRIPTION = (
    "The page memory of v3 portal {portal_id}, imported by rcm_import_legacy: a node per v3 "
    "state, a transition per v3 state transition, a micro-state per state with an embedding. "
    "The portal's v3 batch jobs hang on it. Archived: it is never published nor run."
)
REVISION_COMMENT = (
    "Written by rcm_import_legacy for the v3 batch jobs of this portal, which the v3 system "
    "ran. An empty graph: nothing in V8 runs it."
)


def node_key(state_id) -> str:
    return f"state-{state_id.replace('-', '')}"


# -- the workflows ---------------------------------------------------------------------------


def import_workflows(run) -> None:
    """Each imported endpoint's legacy memory workflow (in the endpoints' step)."""
    names = dict(Endpoint.objects.values_list("pk", "name"))
    for portal_id, (endpoint_id, _) in sorted(run.endpoints.items()):
        run.report.read(WORKFLOW_PATH)
        name = WORKFLOW_NAME.format(name=names[endpoint_id], portal_id=portal_id)[:200]
        description = WORKFLOW_DESCRIPTION.format(portal_id=portal_id)
        row_hash = digest(endpoint_id, name, description)
        entry = run.idmap.get("integration_endpoint", "user_workflow", portal_id)
        if entry is not None and entry.row_hash == row_hash:
            run.report.tally(WORKFLOW_PATH, "unchanged")
            continue
        if entry is None:
            try:
                workflow = _workflow_create(run, endpoint_id, name, description)
            except ApplicationError as exc:
                run.report.reject(WORKFLOW_PATH, portal_id, exc.message)
                continue
        else:
            workflow = Workflow.objects.get(pk=entry.target_id)
            Workflow.objects.filter(pk=workflow.pk).update(name=name, description=description)
        run.idmap.record(
            "integration_endpoint", "user_workflow", [(portal_id, workflow.pk, row_hash)]
        )
        run.report.tally(WORKFLOW_PATH, "created" if entry is None else "updated")


def _workflow_create(run, endpoint_id: int, name: str, description: str) -> Workflow:
    with transaction.atomic():
        workflow = authoring.workflow_create(
            org_id=run.org_id,
            created_by=None,
            name=name,
            description=description,
            endpoint_id=endpoint_id,
        )
        WorkflowRevision.objects.create(
            org_id=run.org_id,
            workflow=workflow,
            revision_num=1,
            graph={
                "required_data": [],
                "task_type_id": None,
                "endpoint_id": endpoint_id,
                "nodes": [],
                "transitions": [],
            },
            comment=REVISION_COMMENT,
        )
        authoring.workflow_archive(workflow=workflow)
    return workflow


# -- states ----------------------------------------------------------------------------------


class _OrgStates(BulkTable):
    legacy_table = "rcm_state"
    key = "state_id"

    def _workflow(self, portal_id) -> str:
        workflow_id = self.run.target("integration_endpoint", "user_workflow", portal_id)
        if workflow_id is None:
            raise Rejected(f"its portal {portal_id} was not imported")
        return workflow_id


class StateNodes(_OrgStates):
    path = NODE_PATH
    model = WorkflowNode
    fields = (
        "org", "workflow", "key", "node_type", "kind", "config", "retry_policy", "trigger_rule",
        "timeout_s", "label_conf", "last_label_at", "position", "created_at", "updated_at",
    )  # fmt: skip

    query = """
        SELECT s.state_id, s.portal_id, s.page_caption, s.action_caption, s.caption_conf,
               md5(row(s.portal_id, s.page_caption, s.action_caption, s.caption_conf)::text)
                   AS row_md5
          FROM rcm_state s JOIN integration_endpoint e USING (portal_id)
         WHERE e.org_id = %(org)s ORDER BY s.state_id
    """

    def fingerprint(self, row) -> tuple:
        return (self._workflow(row.portal_id),)

    def values(self, row, resolved: tuple) -> tuple:
        label_conf = {
            "caption": self.run.mask(row.page_caption) if row.page_caption else None,
            "confidence": float(row.caption_conf) if row.caption_conf is not None else None,
            "action_caption": self.run.mask(row.action_caption) if row.action_caption else None,
        }
        return (
            self.run.org_id,
            resolved[0],
            node_key(row.state_id),
            NodeType.GENERAL,
            WebKind.name,
            {},
            {},
            TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS,
            None,
            label_conf,
            None,
            {},
            self.run.now,
            self.run.now,
        )


class MicroStates(_OrgStates):
    path = STATE_PATH
    model = MicroState
    fields = (
        "org", "workflow", "node", "endpoint", "step_key", "url_pattern", "dom_snapshot",
        "action_json", "semantic_spec", "label", "category", "required", "text_emb", "embedder",
        "embedder_dimension", "mini_score", "success_count", "failure_count", "success_ema",
        "is_retired", "last_hit_at", "created_at", "updated_at",
    )  # fmt: skip

    query = """
        SELECT s.state_id, s.portal_id, s.text_emb::text AS text_emb, s.semantic_spec, s.action,
               s.success_ema, s.page_caption, s.is_retired,
               md5(row(s.portal_id, s.text_emb, s.semantic_spec, s.action, s.success_ema,
                       s.page_caption, s.is_retired)::text) AS row_md5
          FROM rcm_state s JOIN integration_endpoint e USING (portal_id)
         WHERE e.org_id = %(org)s ORDER BY s.state_id
    """

    def fingerprint(self, row) -> tuple:
        node_id = self.run.target("rcm_state", "workflow_node", row.state_id)
        if node_id is None:
            raise Rejected("its workflow node was not imported")
        return (self._workflow(row.portal_id), node_id)

    def values(self, row, resolved: tuple) -> tuple:
        if row.text_emb is None:
            raise Skipped("no embedding (text_emb is NULL): a workflow node without a page memory")
        try:
            vector = embedding_normalised(json.loads(row.text_emb))
        except ValueError as exc:
            raise Rejected(f"text_emb is not JSON: {exc}") from exc
        except ApplicationError as exc:
            raise Rejected(f"text_emb: {exc.message}") from exc
        if not 0 <= row.success_ema <= 1:
            raise Rejected(f"success_ema {row.success_ema} is not between 0 and 1")
        workflow_id, node_id = resolved
        endpoint_id = self.run.endpoints[row.portal_id][0]
        return (
            self.run.org_id,
            workflow_id,
            node_id,
            endpoint_id,
            "",
            "",
            "",  # v3 kept no page snapshot
            self.run.mask(row.action),
            self.run.mask(row.semantic_spec),
            self.run.mask(row.page_caption or "")[:200],
            "",
            False,
            "[" + ",".join(map(str, vector.tolist())) + "]",
            EMBEDDER,
            DIMENSION,
            1.0,
            0,
            0,
            row.success_ema,
            row.is_retired,
            None,
            self.run.now,
            self.run.now,
        )


def _aliases(run) -> None:
    """v3's alias_state_id as V8's aliased_to, between micro-states of one organization."""
    links = run.source.all(
        "SELECT s.state_id, s.alias_state_id FROM rcm_state s JOIN integration_endpoint e "
        "USING (portal_id) WHERE e.org_id = %s AND s.alias_state_id IS NOT NULL",
        [run.legacy_org.org_id],
    )
    aliases_link(
        run,
        path=STATE_PATH,
        model=MicroState,
        field="aliased_to",
        links=links,
        resolve=partial(run.target, "rcm_state", "micro_state"),
        what="v3 state",
    )


# -- transitions -----------------------------------------------------------------------------


def transition_label(caption: str) -> str:
    """The caption as a V8 label: kept if it fits, else shortened with a digest of the whole
    caption, so that two long captions sharing a beginning stay two labels."""
    if len(caption) <= MAX_LABEL_LENGTH:
        return caption
    tail = hashlib.sha1(caption.encode(), usedforsecurity=False).hexdigest()[:8]
    return f"{caption[: MAX_LABEL_LENGTH - len(tail) - 1]}~{tail}"


class Transitions(BulkTable):
    path = TRANSITION_PATH
    legacy_table = "rcm_transition"
    model = WorkflowTransition
    fields = ("org", "workflow", "from_node", "to_node", "action_label", "freq", "created_at")

    query = """
        SELECT t.from_state, t.to_state, t.action_caption, t.freq, f.portal_id AS from_portal,
               g.portal_id AS to_portal, md5(t::text) AS row_md5
          FROM rcm_transition t
          JOIN rcm_state f ON f.state_id = t.from_state
          JOIN rcm_state g ON g.state_id = t.to_state
          JOIN integration_endpoint e ON e.portal_id = f.portal_id
         WHERE e.org_id = %(org)s ORDER BY t.from_state, t.to_state, t.action_caption
    """

    def __init__(self, run):
        super().__init__(run)
        # (from state, to state, label) -> the v3 key of the transition that has that label.
        self.labelled: dict[tuple[str, str, str], str] = {}
        # The transitions already in the legacy workflows, by (from node, to node, label): a
        # new secret key changes every transition's v3 key (a keyed digest), and a transition
        # that is there under its old key is then taken over, not written twice.
        workflows = self.idmap.table("integration_endpoint", "user_workflow").values()
        self.existing = {
            (str(from_node), str(to_node), label): pk
            for from_node, to_node, label, pk in WorkflowTransition.objects.filter(
                workflow_id__in=[entry.target_id for entry in workflows]
            ).values_list("from_node_id", "to_node_id", "action_label", "pk")
        }

    def legacy_id(self, row) -> str:
        # The caption may hold patient data: the map and the report name it by a keyed digest.
        return f"{row.from_state}:{row.to_state}:{digest(row.action_caption)}"

    def fingerprint(self, row) -> tuple:
        if row.from_portal != row.to_portal:
            raise Rejected(
                f"it leads from portal {row.from_portal}'s states to portal {row.to_portal}'s; "
                "a V8 transition stays inside one workflow"
            )
        label = transition_label(self.run.mask(row.action_caption))
        source, target = node_key(row.from_state), node_key(row.to_state)
        problems = edge_problems(Edge(source=source, target=target, label=label), (source, target))
        if problems:
            raise Rejected(problems[0].message)
        nodes = [
            self.run.target("rcm_state", "workflow_node", state)
            for state in (row.from_state, row.to_state)
        ]
        if None in nodes:
            raise Rejected("a state it joins was not imported")
        # Captions that differ only in their patient data mask to one label, and V8 keeps one
        # transition per label between two nodes. The rows come ordered by caption, so the
        # same one keeps the label in every run.
        legacy_id = self.legacy_id(row)
        first = self.labelled.setdefault((row.from_state, row.to_state, label), legacy_id)
        if first != legacy_id:
            raise Skipped(
                f"its caption, masked, is the label of transition {first}, which stands for both"
            )
        entries = self.idmap.table(self.legacy_table, self.target_table)
        existing = self.existing.get((*nodes, label))
        if existing is not None and legacy_id not in entries:
            # Known to this run only, with no row hash: the driver finds it changed, updates
            # the transition and records it in the map under its new key.
            entries[legacy_id] = Entry(str(existing), "")
        workflow_id = self.run.target("integration_endpoint", "user_workflow", row.from_portal)
        return (workflow_id, *nodes, label)

    def values(self, row, resolved: tuple) -> tuple:
        workflow_id, from_node, to_node, label = resolved
        if label != self.run.mask(row.action_caption):
            self.report.note(
                self.path,
                self.legacy_id(row),
                f"its caption is longer than {MAX_LABEL_LENGTH} characters: labelled {label!r}",
            )
        return (
            self.run.org_id,
            workflow_id,
            int(from_node),
            int(to_node),
            label,
            row.freq,
            self.run.now,
        )


def import_states(run) -> None:
    StateNodes(run).run_all()
    MicroStates(run).run_all()
    with run.chunk():
        _aliases(run)
    Transitions(run).run_all()
