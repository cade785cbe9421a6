"""Reads of the memory: lists, and the organization-filtered vector search.

The search is cosine k-NN on the HNSW index of the organization's partition (micro_state is
hash-partitioned by organization; docs/memory.md has the design and its measurements).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
from django.db import connection, transaction
from pgvector.django import CosineDistance

from memory.models import MicroState
from rcm.db.filters import filter_given

MAX_K = 100
# The embedder of states stored with the caller's own embedding (the API's text_emb).
CLIENT_EMBEDDER = "client"
# Candidates the HNSW scan keeps per step: pgvector's default, raised to k for larger pages.
EF_SEARCH = 40
# How far an iterative scan may read before it gives up (pgvector's default): bounded, so that
# a search in an organization with few states of the asked kind stays cheap.
MAX_SCAN_TUPLES = 20_000

# Set for the search's own transaction only (set_config(..., true)), which also keeps them off
# a pooled connection's next user:
# - relaxed_order: the iterative scan goes on reading the index until k rows pass the filters
#   (a neighbour organization in the same partition, retired states, another workflow);
#   results may come slightly out of order, and are sorted here.
# - enable_sort off: for a small organization the planner's estimate prefers reading its rows
#   by org_id and sorting them all (an exact scan, 20x slower at 5,000 rows); without a sort
#   step to choose, it takes the HNSW index, which yields rows in distance order.
_SEARCH_SETTINGS_SQL = (
    "SELECT set_config('hnsw.ef_search', %s, true),"
    " set_config('hnsw.iterative_scan', 'relaxed_order', true),"
    " set_config('hnsw.max_scan_tuples', %s, true),"
    " set_config('enable_sort', 'off', true)"
)
# The exact answer: with index scans off, the planner cannot walk the HNSW graph (it has no
# bitmap scan), so it reads the organization's matching rows through a bitmap of their btree
# indexes and keeps the k nearest in a top-k sort.
_EXACT_SETTINGS_SQL = "SELECT set_config('enable_indexscan', 'off', true)"


@dataclass(frozen=True)
class Scope:
    """What a stored state is compared within: the same workflow step, portal and embedder."""

    workflow_id: object = None
    node_id: int | None = None
    endpoint_id: int | None = None
    embedder: str = ""
    step_key: str = ""


@dataclass(frozen=True)
class Match:
    state: MicroState
    similarity: float


def micro_state_list(
    *, workflow_id=None, node_id=None, endpoint_id=None, is_retired=None, since=None, until=None
):
    return filter_given(
        MicroState.objects.defer("text_emb"),
        workflow_id=workflow_id,
        node_id=node_id,
        endpoint_id=endpoint_id,
        is_retired=is_retired,
        created_at__gte=since,
        created_at__lt=until,
    )


def nearest_queryset(*, vector: np.ndarray, k: int, embedder: str, **filters):
    """The k live states of the organization nearest to ``vector``, in one statement: each
    with its distance, its embedding left behind (3 KB a row). A filter given as None means
    "none" (IS NULL): callers leave out the filters they do not want. Evaluate it under
    ``search_settings``."""
    states = MicroState.objects.filter(is_retired=False, embedder=embedder)
    for column, value in filters.items():
        lookup = {column: value} if value is not None else {f"{column}__isnull": True}
        states = states.filter(**lookup)
    # Distances, not similarities, in the ORDER BY: that is the form the index serves.
    return (
        states.defer("text_emb")
        .annotate(distance=CosineDistance("text_emb", vector))
        .order_by("distance")[:k]
    )


@contextlib.contextmanager
def _transaction_settings(sql: str, params: list[str]):
    """A transaction (or, inside one, a savepoint) with settings applied, rolled back at its
    end: the block only reads, and a released savepoint would keep set_config(..., true)
    values for the rest of the caller's transaction (an API request, a task, a test), where a
    walk's settings would reach the exact read after it, and both every later statement."""
    with transaction.atomic(), connection.cursor() as cursor:
        try:
            cursor.execute(sql, params)
            yield
        finally:
            transaction.set_rollback(True)


def search_settings(k: int):
    """A transaction with the search's settings applied (they end with it)."""
    return _transaction_settings(
        _SEARCH_SETTINGS_SQL, [str(max(EF_SEARCH, k)), str(MAX_SCAN_TUPLES)]
    )


def exact_settings():
    """A transaction in which ``nearest_queryset`` is answered exactly, without the graph."""
    return _transaction_settings(_EXACT_SETTINGS_SQL, [])


def _nearest(*, vector: np.ndarray, k: int, embedder: str, **filters) -> list[Match]:
    with search_settings(k):
        found = list(nearest_queryset(vector=vector, k=k, embedder=embedder, **filters))
    if len(found) < k:
        # The graph walk may end before it has seen every matching state: at max_scan_tuples,
        # at its memory bound (hnsw.scan_mem_multiplier), or where a partition's dead entries
        # (rolled back, deleted, not yet vacuumed) leave part of the graph out of reach. Fewer
        # than k found is then answered exactly: it is the common case of an organization (or
        # a filter) with fewer than k states, whose rows are few and cheap to read, and
        # otherwise the rare one where the walk gave up, where the exact read is the only
        # correct answer. (The test suite once saw an organization of 3 states get 1 of them.)
        with exact_settings():
            found = list(nearest_queryset(vector=vector, k=k, embedder=embedder, **filters))
    found.sort(key=lambda state: (state.distance, state.pk))  # relaxed order: nearly sorted
    return [Match(state, 1.0 - state.distance) for state in found]


def micro_state_search(
    *,
    vector: np.ndarray,
    embedder: str,
    k: int = 10,
    threshold: float | None = None,
    workflow_id=None,
    node_id: int | None = None,
    endpoint_id: int | None = None,
) -> list[Match]:
    """The organization's k live states nearest to ``vector`` (with a similarity of at least
    ``threshold``, if given: cosine similarity runs from -1 to 1), nearest first. Always
    within the current organization: another organization's workflow id matches nothing."""
    given = {"workflow_id": workflow_id, "node_id": node_id, "endpoint_id": endpoint_id}
    matches = _nearest(
        vector=vector,
        k=k,
        embedder=embedder,
        **{column: value for column, value in given.items() if value is not None},
    )
    return [match for match in matches if threshold is None or match.similarity >= threshold]


def nearest_in_scope(*, scope: Scope, vector: np.ndarray, fields: tuple[str, ...] = ()):
    """The live state of exactly this scope nearest to ``vector`` (the same-page rule), with
    only ``fields`` loaded if given.

    Exact, not through the HNSW graph: a scope (one workflow step on one portal) holds a few
    states, which the scope's b-tree index (micro_state_scope_step) finds directly; the graph
    would walk past every other step's states of the organization to reach them. One
    statement, outside any transaction of its own: the web agent asks before every action.
    """
    states = nearest_queryset(
        vector=vector,
        k=1,
        embedder=scope.embedder,
        # The scope of the same-page rule: "no workflow" is a value of its own there.
        workflow_id=scope.workflow_id,
        node_id=scope.node_id,
        endpoint_id=scope.endpoint_id,
        step_key=scope.step_key,
    )
    if fields:
        states = states.only(*fields)
    found = list(states)
    return Match(found[0], 1.0 - found[0].distance) if found else None


def micro_state_partition(*, org_id) -> str:
    """The name of the partition that holds (or will hold) the organization's states. The
    modulus is read from each partition's bound, as the remainder is: a re-partitioning does
    not change this query."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid,"
            " regexp_match(pg_get_expr(c.relpartbound, c.oid),"
            "  'modulus (\\d+), remainder (\\d+)') AS bound"
            " WHERE i.inhparent = 'micro_state'::regclass"
            " AND satisfies_hash_partition("
            "  'micro_state'::regclass, bound[1]::int, bound[2]::int, %s::uuid)",
            [str(org_id)],
        )
        return cursor.fetchone()[0]


def micro_state_reembed_list(*, embedder: str, only_stale: bool):
    """The organization's states a re-embedding with ``embedder`` redoes, in id order. States
    stored with the caller's own embedding are left alone: only the caller's model can make
    them again."""
    states = MicroState.objects.exclude(embedder=CLIENT_EMBEDDER).order_by("id")
    return states.exclude(embedder=embedder) if only_stale else states


# -- the console's memory browser -------------------------------------------------------------


@dataclass(frozen=True)
class StatePage:
    states: list[MicroState]
    next_before: int | None  # the ``before_id`` of the next page; None on the last


def micro_state_page(
    *,
    size: int,
    before_id: int | None = None,
    workflow_id=None,
    node_id: int | None = None,
    endpoint_id: int | None = None,
    is_retired: bool | None = None,
    label_contains: str = "",
) -> StatePage:
    """A page of the organization's states, newest first, after the keyset ``before_id``
    (ids below it): a page costs the same far into a large memory as at its start, where an
    OFFSET would read every row before it. The page, the action and the embedding (kilobytes
    a row) are left behind."""
    states = filter_given(
        micro_state_list(
            workflow_id=workflow_id,
            node_id=node_id,
            endpoint_id=endpoint_id,
            is_retired=is_retired,
        ),
        id__lt=before_id,
        label__icontains=label_contains,
    )
    found = list(
        states.select_related("workflow", "node", "endpoint")
        .defer("dom_snapshot", "action_json", "semantic_spec")
        .order_by("-id")[: size + 1]
    )
    more = len(found) > size
    return StatePage(found[:size], found[size - 1].pk if more else None)


def micro_state_detail(*, state_id: int) -> MicroState | None:
    """One state of the organization with its workflow, node and endpoint (None if it has no
    such state: another organization's is not found)."""
    return (
        MicroState.objects.select_related("workflow", "node", "endpoint")
        .filter(pk=state_id)
        .first()
    )


def micro_state_replaced_list(*, state: MicroState):
    """The retired states aliased to ``state``: the ones it replaced."""
    return MicroState.objects.filter(aliased_to_id=state.pk).only("id", "label").order_by("-id")


def micro_state_neighbours(*, state: MicroState, k: int) -> list[Match]:
    """The organization's ``k`` live states nearest to ``state`` (itself left out), made by the
    same embedder (another's vectors live in an unrelated space)."""
    matches = micro_state_search(vector=state.text_emb, embedder=state.embedder, k=k + 1)
    matches = [match for match in matches if match.state.pk != state.pk][:k]
    # Their workflows and nodes in one more query (the search itself joins nothing).
    shown = MicroState.objects.filter(pk__in=[match.state.pk for match in matches])
    shown = shown.select_related("workflow", "node").defer(
        "text_emb", "dom_snapshot", "action_json", "semantic_spec"
    )
    by_id = {one.pk: one for one in shown}
    # A state gone since the search (its workflow deleted) is left out.
    return [Match(by_id[m.state.pk], m.similarity) for m in matches if m.state.pk in by_id]
