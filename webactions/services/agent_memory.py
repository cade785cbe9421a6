"""The web agent's memory, on the task's side: finding the state a page was met in, and
writing back what happened there (webactions/agent.py asks for these through the relay).

A state's scope is the organization's (workflow, node, endpoint) and the step of the action
list (``step_key``: phase, number, tool and a digest of the target's description — the
workflow's own words, never a row's values, so every row of a batch meets the same states).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from memory import selectors as memory_selectors
from memory import services as memory_services
from memory.models import MicroState
from memory.selectors import Scope
from tenants.models import Endpoint
from workflows.models import Workflow, WorkflowNode


@dataclass(frozen=True)
class MemoryScope:
    """Where an attempt's states live: the organization's (from the task's context) workflow,
    node and endpoint — the log-in's steps belong to the endpoint alone, shared by every
    workflow that uses it."""

    workflow: Workflow | None = None
    node: WorkflowNode | None = None
    endpoint: Endpoint | None = None

    def for_phase(self, phase: str) -> MemoryScope:
        return MemoryScope(endpoint=self.endpoint) if phase == "login" else self


@dataclass(frozen=True)
class Recalled:
    """The remembered state nearest to the page: what worked there and how alike they are."""

    state_id: int
    similarity: float
    action: dict  # the state's action_json: tool, target, and the element that worked
    words: frozenset[str]  # what the page said about itself (webactions.resolve.page_words)


def state_recall(*, scope: MemoryScope, step_key: str, vector, embedder: str) -> Recalled | None:
    """The live state of this scope and step nearest to the page's ``vector``, at whatever
    similarity (the caller applies the same-page threshold and the repair gate)."""
    match = memory_selectors.nearest_in_scope(
        scope=Scope(
            workflow_id=scope.workflow.pk if scope.workflow else None,
            node_id=scope.node.pk if scope.node else None,
            endpoint_id=scope.endpoint.pk if scope.endpoint else None,
            embedder=embedder,
            step_key=step_key,
        ),
        vector=vector,
        fields=("id", "action_json", "semantic_spec"),  # not the page, kilobytes a row
    )
    if match is None:
        return None
    words = frozenset((match.state.semantic_spec or {}).get("page_words", ()))
    return Recalled(match.state.pk, match.similarity, match.state.action_json, words)


def state_remember(
    *,
    scope: MemoryScope,
    step_key: str,
    dom: str,
    url: str,
    action: dict,
    label: str,
    words: list[str],
    repaired: bool,
    declared: dict,
) -> int:
    """Store the page and the action that worked on it, by the memory's same-page rule (a
    repaired action retires the state it replaces, aliased to the new one). The caller masked
    the DOM and the action with the row's values and the credential's; the store masks the
    row's values again (a second mask changes nothing masked)."""
    stored = memory_services.micro_state_store(
        dom_snapshot=dom[: settings.MEMORY_MAX_DOM_BYTES // 4],
        action_json=action,
        url=url,
        workflow=scope.workflow,
        node=scope.node,
        endpoint=scope.endpoint,
        step_key=step_key,
        semantic_spec={"page_words": words},
        label=label,
        category="web",
        declared_phi=declared,
        repaired=repaired,
    )
    return stored.state.pk


def state_outcome(*, state_id: int, success: bool) -> None:
    """Count how the remembered action did (the state's success average; a state that keeps
    failing retires itself)."""
    state = MicroState.objects.filter(pk=state_id).first()
    if state is not None:
        memory_services.micro_state_outcome_record(state=state, success=success)
