"""Reads of the memory: lists, and the organization-filtered vector search.

The search is cosine k-NN on the HNSW index of the organization's partition (micro_state is
hash-partitioned by organization; docs/memory.md has the design and its measurements).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from django.db import connection, transaction

from memory.models import MicroState
from rcm.context import require_org_id
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

# Distances rather than similarities in the ORDER BY: that is the form the index serves.
_SEARCH_SQL = """
SELECT id, text_emb <=> %(q)s AS distance
  FROM micro_state
 WHERE org_id = %(org)s AND is_retired = false AND embedder = %(embedder)s {filters}
 ORDER BY text_emb <=> %(q)s
 LIMIT %(k)s
"""


@dataclass(frozen=True)
class Scope:
    """What a stored state is compared within: the same workflow step, portal and embedder."""

    workflow_id: object = None
    node_id: int | None = None
    endpoint_id: int | None = None
    embedder: str = ""


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


def _nearest_ids(
    *, vector: np.ndarray, k: int, embedder: str, filters: dict, exact: dict
) -> list[tuple[int, float]]:
    """(id, cosine distance) of the k nearest live states of the organization."""
    clauses, params = [], {}
    for column, value in filters.items():
        if value is not None:
            clauses.append(f"AND {column} = %({column})s")
            params[column] = value
    for column, value in exact.items():
        # The scope of the same-page rule: "no workflow" is a value of its own there.
        clauses.append(f"AND {column} IS NOT DISTINCT FROM %({column})s")
        params[column] = value
    params.update(q=_literal(vector), org=str(require_org_id()), embedder=embedder, k=k)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_SEARCH_SETTINGS_SQL, [str(max(EF_SEARCH, k)), str(MAX_SCAN_TUPLES)])
        cursor.execute(_SEARCH_SQL.format(filters=" ".join(clauses)), params)
        return sorted(cursor.fetchall(), key=lambda row: (row[1], row[0]))


def _literal(vector: np.ndarray) -> str:
    # pgvector's text form, cast by the column's operator: no per-connection type setup.
    return "[" + ",".join(repr(float(value)) for value in vector) + "]"


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
    rows = _nearest_ids(
        vector=vector,
        k=k,
        embedder=embedder,
        filters={"workflow_id": workflow_id, "node_id": node_id, "endpoint_id": endpoint_id},
        exact={},
    )
    similarities = {state_id: 1.0 - distance for state_id, distance in rows}
    wanted = [
        state_id for state_id, _ in rows if threshold is None or similarities[state_id] >= threshold
    ]
    states = MicroState.objects.defer("text_emb").in_bulk(wanted)
    return [Match(states[state_id], similarities[state_id]) for state_id in wanted]


def nearest_in_scope(*, scope: Scope, vector: np.ndarray) -> Match | None:
    """The live state of exactly this scope nearest to ``vector`` (the same-page rule)."""
    rows = _nearest_ids(
        vector=vector,
        k=1,
        embedder=scope.embedder,
        filters={},
        exact={
            "workflow_id": scope.workflow_id,
            "node_id": scope.node_id,
            "endpoint_id": scope.endpoint_id,
        },
    )
    if not rows:
        return None
    state_id, distance = rows[0]
    return Match(MicroState.objects.get(pk=state_id), 1.0 - distance)


def micro_state_reembed_list(*, embedder: str, only_stale: bool):
    """The organization's states a re-embedding with ``embedder`` redoes, in id order. States
    stored with the caller's own embedding are left alone: only the caller's model can make
    them again."""
    states = MicroState.objects.exclude(embedder=CLIENT_EMBEDDER).order_by("id")
    return states.exclude(embedder=embedder) if only_stale else states
