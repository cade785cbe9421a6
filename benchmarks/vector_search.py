"""Organization-filtered vector search and store-with-dedup, against raw unfiltered HNSW.

    .venv/bin/python benchmarks/vector_search.py [--states 100000] [--orgs 20] [--queries 300]

Data: ``--states`` live micro-states (plus 5 % retired ones) across ``--orgs`` organizations of
unequal size, the smallest holding 1 % of the states: clustered synthetic 768-D embeddings
(portal pages shared across organizations -> each organization's version of 50 of them ->
layout variants -> states), a 3 KB masked DOM each. Loaded with COPY, then the HNSW index of
the migration (m=16, ef_construction=64, partial on is_retired = false) is built over it:
``build_seconds``. Organization ids come from the seeded generator too, the 1 % one's drawn
until it shares the largest one's partition (its graph): the hardest layout for it. A plain,
unpartitioned copy of the same vectors gets the same index: the raw unfiltered HNSW baseline,
queried in the same run.

Queries: near-duplicates of stored live states (the agent meeting a page it has seen),
spread over every organization, weighted to the small ones. Org-filtered search goes through
the service layer (memory.selectors.micro_state_search: the organization's context, its
settings, the states fetched); recall@10 is against exact search over the organization's live
states (numpy). Store: memory.services.micro_state_store with a real portal page (masking,
the same-page rule against the organization's states, the insert), half near-duplicates of
stored states (reused), half new pages (inserted).

Prints build_seconds, org_filtered_p50_ms, org_filtered_p99_ms, org_filtered_recall_at_10,
raw_hnsw_p50_ms, raw_hnsw_recall_at_10, org_filtered_p50_ratio_to_raw_hnsw, store_p50_ms and
small_org_recall_at_10 (the 1 % organization).
"""

from __future__ import annotations

import argparse
import time
import uuid

import numpy as np
from _common import ROOT, bench_database, percentile
from django.db import connection
from pgvector import Vector

from memory import selectors, services
from memory.models import MicroState
from rcm.context import org_context
from rcm.db.roles import as_owner, runtime_role
from rcm.lookups import OrgType
from rcm.progress import ProgressBar
from tenants import services as tenant_services

DIMENSION = 768
EMBEDDER = selectors.CLIENT_EMBEDDER  # the vectors are the caller's own, as the API allows
PAGES_PER_ORG, SHARED_PAGES, STATES_PER_VARIANT = 50, 300, 25
SPREAD_ORG, SPREAD_VARIANT, SPREAD_STATE, SPREAD_QUERY = 0.2, 0.4, 0.25, 0.1
HNSW = (
    "USING hnsw (text_emb vector_cosine_ops) WITH (m = 16, ef_construction = 64) "
    "WHERE is_retired = false"
)
PORTAL_PAGES = ROOT / "tests" / "fixtures" / "portal"


def unit(vectors: np.ndarray) -> np.ndarray:
    return (vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)).astype(np.float32)


def org_sizes(states: int, orgs: int) -> list[int]:
    """Unequal organizations, the last one holding 1 % of the states."""
    weights = np.array([1.0 / (rank + 1) ** 0.9 for rank in range(orgs - 1)])
    small = max(1, states // 100)
    sizes = np.floor(weights / weights.sum() * (states - small)).astype(int)
    sizes[0] += states - small - sizes.sum()
    return [*sizes.tolist(), small]


def synthesize(rng, sizes: list[int]):
    """(vectors, org index per vector): pages shared by the portals everyone uses, each
    organization's version of its pages, layout variants, states."""

    def noise(count: int, radius: float) -> np.ndarray:
        return radius * unit(rng.standard_normal((count, DIMENSION), dtype=np.float32))

    shared = unit(rng.standard_normal((SHARED_PAGES, DIMENSION), dtype=np.float32))
    vectors, owners = [], []
    for org, size in enumerate(sizes):
        pages = rng.choice(SHARED_PAGES, PAGES_PER_ORG, replace=False)
        centres = unit(shared[pages] + noise(PAGES_PER_ORG, SPREAD_ORG))
        for page, count in enumerate(rng.multinomial(size, [1 / PAGES_PER_ORG] * PAGES_PER_ORG)):
            if not count:
                continue
            variants = unit(
                centres[page] + noise(max(1, -(-count // STATES_PER_VARIANT)), SPREAD_VARIANT)
            )
            chosen = variants[rng.integers(0, len(variants), count)]
            vectors.append(unit(chosen + noise(count, SPREAD_STATE)))
            owners += [org] * count
    return np.concatenate(vectors), np.array(owners)


def load(org_ids, vectors, owners, retired, doms) -> None:
    """COPY into a staging table, then into micro_state one organization at a time (row-level
    security applies to the owner too: each insert runs as its organization)."""
    with as_owner(), connection.cursor() as cursor:
        cursor.execute("DROP INDEX micro_state_text_emb_hnsw")
        cursor.execute(
            "CREATE UNLOGGED TABLE bench_stage (row bigint, org_id uuid, text_emb vector(768), "
            "is_retired boolean, dom text)"
        )
        with (
            cursor.copy("COPY bench_stage FROM STDIN") as copy,
            ProgressBar(len(vectors), "loading states") as bar,
        ):
            for index, vector in enumerate(vectors):
                literal = "[" + ",".join(f"{value:.6f}" for value in vector) + "]"
                copy.write_row(
                    (
                        index,
                        str(org_ids[owners[index]]),
                        literal,
                        bool(retired[index]),
                        doms[index % len(doms)],
                    )
                )
                if index % 1000 == 999:
                    bar.advance(1000)
        for org_id in org_ids:
            cursor.execute("SELECT set_config('app.current_org_id', %s, false)", [str(org_id)])
            cursor.execute(
                "INSERT INTO micro_state (org_id, step_key, url_pattern, dom_snapshot, "
                "action_json, semantic_spec, label, category, required, text_emb, embedder, "
                "embedder_dimension, mini_score, success_count, failure_count, success_ema, "
                "is_retired, created_at, updated_at) "
                # The row's number in the pattern: recall compares the database's ids with
                # the exact answer computed here.
                "SELECT org_id, '', '/bench/row/' || row, dom, '{\"tool\": \"click\"}', '{}', '', "
                "'', false, text_emb, %s, 768, 1, 0, 0, 1, is_retired, now(), now() "
                "FROM bench_stage WHERE org_id = %s ORDER BY row",
                [EMBEDDER, str(org_id)],
            )
        cursor.execute("SELECT set_config('app.current_org_id', '', false)")
        # The baseline: the same vectors in one plain table, no organizations, no partitions.
        cursor.execute(
            "CREATE TABLE bench_raw AS SELECT row AS id, text_emb, is_retired FROM bench_stage"
        )
        cursor.execute(f'GRANT SELECT ON bench_raw TO "{runtime_role()}"')
        cursor.execute("DROP TABLE bench_stage")


def build_indexes() -> tuple[float, float]:
    with as_owner(), connection.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '2GB'")
        started = time.perf_counter()
        cursor.execute(f"CREATE INDEX micro_state_text_emb_hnsw ON micro_state {HNSW}")
        build = time.perf_counter() - started
        started = time.perf_counter()
        cursor.execute(f"CREATE INDEX bench_raw_hnsw ON bench_raw {HNSW}")
        raw_build = time.perf_counter() - started
        cursor.execute("VACUUM ANALYZE micro_state")
        cursor.execute("VACUUM ANALYZE bench_raw")
    return build, raw_build


def organization_ids(rng, orgs: int) -> list[uuid.UUID]:
    """Ids from the seeded generator, so that which organizations share a partition (and its
    graph) is part of the data and the same in every run; the 1 % organization's is drawn
    until it shares the largest one's partition, the hardest place for it to be found."""

    def draw() -> uuid.UUID:
        return uuid.UUID(bytes=rng.bytes(16), version=4)

    ids = [draw() for _ in range(orgs - 1)]
    largest = selectors.micro_state_partition(org_id=ids[0])
    small = next(
        org_id
        for org_id in iter(draw, None)
        if selectors.micro_state_partition(org_id=org_id) == largest
    )
    return [*ids, small]


def exact_top(vectors, candidates: np.ndarray, query: np.ndarray, k: int = 10) -> set[int]:
    scores = vectors[candidates] @ query
    return set(candidates[np.argsort(-scores)[:k]].tolist())


def org_filtered(org_ids, ids_by_row, vectors, owners, live, queries) -> tuple[list, list]:
    """(latencies in ms, recall@10 per query) of the service's search."""
    latencies, recalls = [], []
    for org, query in ProgressBar.over(queries, "org-filtered"):
        with org_context(org_ids[org]):
            started = time.perf_counter()
            matches = selectors.micro_state_search(vector=query, embedder=EMBEDDER, k=10)
            latencies.append((time.perf_counter() - started) * 1000)
        found = {match.state.pk for match in matches}
        candidates = np.nonzero((owners == org) & live)[0]
        expected = {ids_by_row[row] for row in exact_top(vectors, candidates, query)}
        recalls.append(len(found & expected) / len(expected))
    return latencies, recalls


def raw_hnsw(vectors, live, queries) -> tuple[list, list]:
    """The same index over every state, no filter: the fastest a k-NN can be here."""
    sql = "SELECT id FROM bench_raw WHERE is_retired = false ORDER BY text_emb <=> %s LIMIT 10"
    latencies, recalls = [], []
    all_live = np.nonzero(live)[0]
    for _, query in ProgressBar.over(queries, "raw hnsw"):
        started = time.perf_counter()
        with selectors.search_settings(10), connection.cursor() as cursor:
            cursor.execute(sql, [Vector(query).to_text()])
            found = {row[0] for row in cursor.fetchall()}
        latencies.append((time.perf_counter() - started) * 1000)
        recalls.append(len(found & exact_top(vectors, all_live, query)) / 10)
    return latencies, recalls


def stores(org_ids, vectors, owners, live, rng, count: int) -> list[float]:
    doms = [path.read_text() for path in sorted(PORTAL_PAGES.glob("*.html"))]
    latencies = []
    rows = rng.choice(np.nonzero(live)[0], count, replace=False)
    for index, row in enumerate(ProgressBar.over(rows, "store")):
        if index % 2:  # a page never seen: a direction of its own
            vector = unit(rng.standard_normal(DIMENSION).astype(np.float32))
        else:
            vector = unit(vectors[row] + 0.02 * rng.standard_normal(DIMENSION))
        with org_context(org_ids[owners[row]]):
            started = time.perf_counter()
            services.micro_state_store(
                dom_snapshot=doms[index % len(doms)],
                action_json={"tool": "click", "target": {"role": "button", "name": "Search"}},
                url="https://portal.example/eligibility",
                text_emb=vector.tolist(),
                declared_phi={"member_id": "W123456789", "last_name": "Gonzalez"},
            )
            latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--states", type=int, default=100_000)
    parser.add_argument("--orgs", type=int, default=20)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--stores", type=int, default=200)
    args = parser.parse_args()
    rng = np.random.default_rng(42)
    sizes = org_sizes(args.states, args.orgs)
    vectors, owners = synthesize(rng, sizes)
    # 5 % more: retired states, near copies of live ones, that the search must pass over.
    retired_rows = rng.integers(0, len(vectors), len(vectors) // 20)
    near_copies = vectors[retired_rows] + 0.1 * rng.standard_normal((len(retired_rows), DIMENSION))
    vectors = np.concatenate([vectors, unit(near_copies)])
    owners = np.concatenate([owners, owners[retired_rows]])
    live = np.arange(len(vectors)) < args.states
    order = rng.permutation(len(vectors))  # rows arrive interleaved across organizations
    vectors, owners, live = vectors[order], owners[order], live[order]
    doms = [path.read_text() for path in sorted(PORTAL_PAGES.glob("*.html"))]
    # Queries: near-duplicates of live states, every organization, the 1 % one weighted up.
    small = args.orgs - 1
    picks = [
        (org, row)
        for org in range(args.orgs)
        for row in rng.choice(
            np.nonzero((owners == org) & live)[0],
            min(int((owners == org).sum()), args.queries // args.orgs * (3 if org == small else 1)),
            replace=False,
        )
    ]
    queries = [
        (org, unit(vectors[row] + SPREAD_QUERY * unit(rng.standard_normal(DIMENSION))))
        for org, row in picks
    ]

    with bench_database("bench_vector"):
        org_ids = [
            tenant_services.organization_create(
                name=f"Org {n}", org_type=OrgType.BILLING_FIRM, org_id=org_id
            ).id
            for n, org_id in enumerate(organization_ids(rng, args.orgs))
        ]
        load(org_ids, vectors, owners, ~live, doms)
        build, raw_build = build_indexes()
        # The database's ids, in the order of the rows above (inserted org by org).
        ids_by_row = _ids_by_row(org_ids)
        warm = queries[:: max(1, len(queries) // 30)]
        org_filtered(org_ids, ids_by_row, vectors, owners, live, warm)
        raw_hnsw(vectors, live, warm)
        filtered_ms, filtered_recall = org_filtered(
            org_ids, ids_by_row, vectors, owners, live, queries
        )
        raw_ms, raw_recall = raw_hnsw(vectors, live, queries)
        store_ms = stores(org_ids, vectors, owners, live, rng, args.stores)
    small_recall = [r for (org, _), r in zip(queries, filtered_recall, strict=True) if org == small]
    filtered_p50, raw_p50 = percentile(filtered_ms, 50), percentile(raw_ms, 50)
    print(f"states: {args.states} live + {int((~live).sum())} retired in {args.orgs} organizations")
    print(f"build_seconds: {build:.1f}")
    print(f"raw_build_seconds: {raw_build:.1f}")
    print(f"org_filtered_p50_ms: {filtered_p50:.2f}")
    print(f"org_filtered_p99_ms: {percentile(filtered_ms, 99):.2f}")
    print(f"org_filtered_recall_at_10: {np.mean(filtered_recall):.3f}")
    print(f"small_org_recall_at_10: {np.mean(small_recall):.3f}")
    print(f"raw_hnsw_p50_ms: {raw_p50:.2f}")
    print(f"raw_hnsw_recall_at_10: {np.mean(raw_recall):.3f}")
    print(f"org_filtered_p50_ratio_to_raw_hnsw: {filtered_p50 / raw_p50:.2f}")
    print(f"store_p50_ms: {percentile(store_ms, 50):.2f}")
    print(f"store_p99_ms: {percentile(store_ms, 99):.2f}")


def _ids_by_row(org_ids) -> dict[int, int]:
    """Row number here -> micro_state id (the load wrote the row number into url_pattern)."""
    mapping = {}
    for org_id in org_ids:
        with org_context(org_id):
            for state_id, pattern in MicroState.objects.values_list("id", "url_pattern"):
                mapping[int(pattern.rsplit("/", 1)[1])] = state_id
    return mapping


if __name__ == "__main__":
    main()
