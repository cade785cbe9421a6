"""Organization-filtered vector search: scoped always, filters that never starve the index
scan, the HNSW index at work, and the pgvector the search needs."""

import uuid

import numpy as np
import pytest
from django.db import connection, transaction

from memory import selectors
from memory.checks import check_pgvector_version, pgvector_problem
from memory.models import MicroState
from rcm.context import org_context
from rcm.db.roles import as_owner
from tenants import services as tenant_services
from tenants.models import ChannelType
from tests.workflows.factories import entry, general, outcome, workflow_build
from workflows.models import WorkflowNode

EMBEDDER = "test-embedder"
RNG = np.random.default_rng(7)


def unit(vector: np.ndarray) -> np.ndarray:
    return (vector / np.linalg.norm(vector)).astype(np.float32)


def near(centre: np.ndarray, noise: float) -> np.ndarray:
    return unit(centre + RNG.normal(0, noise, centre.shape))


def add_states(org_id, vectors, **fields) -> list[MicroState]:
    with org_context(org_id):
        return MicroState.objects.bulk_create(
            MicroState(
                org_id=org_id,
                dom_snapshot="<p>page</p>",
                action_json={"tool": "click"},
                text_emb=vector,
                embedder=EMBEDDER,
                embedder_dimension=768,
                **fields,
            )
            for vector in vectors
        )


def search(org_id, vector, **kwargs) -> list[selectors.Match]:
    with org_context(org_id):
        return selectors.micro_state_search(vector=vector, embedder=EMBEDDER, **kwargs)


def test_results_are_the_nearest_first_with_their_similarity(org_a):
    centre = unit(RNG.normal(size=768))
    states = add_states(org_a.id, [near(centre, 0.01 * i) for i in range(1, 6)])
    found = search(org_a.id, centre, k=3)
    assert [match.state.pk for match in found] == [state.pk for state in states[:3]]
    similarities = [match.similarity for match in found]
    assert similarities == sorted(similarities, reverse=True)
    expected = float(np.dot(centre, states[0].text_emb))
    assert similarities[0] == pytest.approx(expected, abs=1e-5)


def test_search_never_returns_another_organizations_state(org_a, org_b):
    centre = unit(RNG.normal(size=768))
    add_states(org_b.id, [near(centre, 0.001) for _ in range(20)])
    add_states(org_a.id, [near(-centre, 0.5) for _ in range(3)])
    found = search(org_a.id, centre, k=10)
    assert len(found) == 3
    assert {match.state.org_id for match in found} == {org_a.id}


def test_another_organizations_workflow_id_finds_nothing_and_says_nothing(org_a, org_b):
    theirs, _ = workflow_build(
        org_id=org_b.id, nodes=[entry(), general("a"), outcome()], edges=["start->a->done"]
    )
    centre = unit(RNG.normal(size=768))
    with org_context(org_b.id):
        add_states(org_b.id, [centre], workflow=theirs)
    add_states(org_a.id, [centre])
    assert search(org_a.id, centre, workflow_id=theirs.pk) == []
    assert search(org_a.id, centre, workflow_id=uuid.uuid4()) == []


def test_threshold_k_retired_and_filters(org_a):
    centre = unit(RNG.normal(size=768))
    close = add_states(org_a.id, [near(centre, 0.002) for _ in range(4)])
    far = add_states(org_a.id, [unit(RNG.normal(size=768)) for _ in range(4)])
    with org_context(org_a.id):
        MicroState.objects.filter(pk=close[0].pk).update(is_retired=True)
    found = search(org_a.id, centre, k=10, threshold=0.9)
    assert {match.state.pk for match in found} == {state.pk for state in close[1:]}
    assert len(search(org_a.id, centre, k=2)) == 2
    assert len(search(org_a.id, centre, k=100)) == 7  # every live state, far ones included
    assert all(match.state.pk != far[0].pk for match in search(org_a.id, centre, k=3))


def test_filters_by_workflow_node_and_endpoint(org_a):
    workflow, _ = workflow_build(
        org_id=org_a.id, nodes=[entry(), general("a"), outcome()], edges=["start->a->done"]
    )
    with org_context(org_a.id):
        node = WorkflowNode.objects.get(workflow=workflow, key="a")
        endpoint = tenant_services.endpoint_create(
            org_id=org_a.id, name="UHC", channel_type=ChannelType.objects.get(code="uhc-portal")
        )
    centre = unit(RNG.normal(size=768))
    plain = add_states(org_a.id, [near(centre, 0.001)])
    in_workflow = add_states(org_a.id, [near(centre, 0.01)], workflow=workflow)
    at_node = add_states(org_a.id, [near(centre, 0.02)], workflow=workflow, node=node)
    on_endpoint = add_states(org_a.id, [near(centre, 0.03)], endpoint=endpoint)

    def ids(**filters):
        return [match.state.pk for match in search(org_a.id, centre, **filters)]

    assert ids(workflow_id=workflow.pk) == [in_workflow[0].pk, at_node[0].pk]
    assert ids(node_id=node.pk) == [at_node[0].pk]
    assert ids(endpoint_id=endpoint.pk) == [on_endpoint[0].pk]
    assert ids()[0] == plain[0].pk


@pytest.fixture
def crowded_partition(org_a):
    """Org A holds 1,980 states around the query; a small organization sharing A's partition
    holds 20 (1 %), all farther from it than every one of A's."""
    partition = selectors.micro_state_partition(org_id=org_a.id)
    # Ids are drawn until one hashes into A's partition (1 in 32 each), and only that one is
    # made an organization: drawing organizations themselves, 200 tries missed once in a while.
    org_id = next(
        candidate
        for candidate in iter(uuid.uuid4, None)
        if selectors.micro_state_partition(org_id=candidate) == partition
    )
    small = tenant_services.organization_create(
        name="Small clinic", org_type="hospital", org_id=org_id
    )
    centre = unit(RNG.normal(size=768))
    add_states(org_a.id, [near(centre, 0.02) for _ in range(1980)])
    small_states = add_states(small.id, [near(centre, 0.2) for _ in range(20)])
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {partition}")
    return small, small_states, centre


def test_a_small_organization_still_gets_k_results(crowded_partition):
    """The 40 candidates the HNSW scan reads first are all org A's; the iterative scan keeps
    reading until the small organization's k come."""
    small, small_states, centre = crowded_partition
    found = search(small.id, centre, k=10)
    assert len(found) == 10
    assert {match.state.org_id for match in found} == {small.id}
    exact = sorted(small_states, key=lambda s: -float(np.dot(centre, s.text_emb)))[:10]
    assert [match.state.pk for match in found] == [state.pk for state in exact]


def test_a_walk_that_gives_up_early_is_answered_exactly(crowded_partition, monkeypatch):
    """The HNSW walk may end before it reaches a small organization's states (here it may read
    only 60 tuples, all org A's); the search then reads the organization's rows exactly."""
    small, small_states, centre = crowded_partition
    monkeypatch.setattr(selectors, "MAX_SCAN_TUPLES", 60)
    with org_context(small.id), selectors.search_settings(50):
        walked = list(selectors.nearest_queryset(vector=centre, k=50, embedder=EMBEDDER))
    assert len(walked) < 10  # the walk alone gives up: the case is the one under test
    found = search(small.id, centre, k=10)
    exact = sorted(small_states, key=lambda s: -float(np.dot(centre, s.text_emb)))[:10]
    assert [match.state.pk for match in found] == [state.pk for state in exact]
    # Fewer states than k: every one of them.
    found = search(small.id, centre, k=50)
    assert sorted(match.state.pk for match in found) == sorted(s.pk for s in small_states)


def _settings(*names: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + ", ".join("current_setting(%s, true)" for _ in names), names)
        return list(cursor.fetchone())


def test_the_search_settings_end_with_their_block_inside_a_callers_transaction(
    crowded_partition,
):
    """A test runs in a transaction, as an API request and a task do: a released savepoint
    would keep set_config(..., true) values for the rest of it."""
    small, _, centre = crowded_partition
    names = ("enable_sort", "enable_indexscan", "hnsw.iterative_scan", "hnsw.max_scan_tuples")
    assert connection.in_atomic_block
    with org_context(small.id):
        search(small.id, centre, k=50)  # a walk and then the exact read
        before = _settings(*names)
        with selectors.search_settings(10):
            assert _settings("enable_sort", "hnsw.iterative_scan") == ["off", "relaxed_order"]
        with selectors.exact_settings():
            assert _settings("enable_sort", "enable_indexscan") == ["on", "off"]
        assert _settings(*names) == before
    assert before[:2] == ["on", "on"]


def _plan(org_id, vector) -> str:
    with org_context(org_id), selectors.search_settings(10):
        states = selectors.nearest_queryset(vector=vector, k=10, embedder=EMBEDDER)
        return states.explain(analyze=True, costs=False)


def test_explain_shows_the_hnsw_index_of_one_partition(crowded_partition, org_a):
    small, _, centre = crowded_partition
    for org_id in (org_a.id, small.id):
        plan = _plan(org_id, centre)
        assert "Index Scan using micro_state_p" in plan, plan
        assert "text_emb_idx" in plan, plan
        # One partition read: the organization's.
        assert plan.count("Index Scan using") == 1, plan
        assert "Sort" not in plan, plan


def _exact_plan(org_id, vector, embedder: str = EMBEDDER) -> str:
    with org_context(org_id):
        # A walk first, in the same transaction: the exact read must not inherit its settings.
        with selectors.search_settings(10):
            list(selectors.nearest_queryset(vector=vector, k=10, embedder=embedder))
        with selectors.exact_settings():
            states = selectors.nearest_queryset(vector=vector, k=10, embedder=embedder)
            return states.explain(analyze=True, costs=False)


def test_explain_shows_the_exact_answer_reads_one_partition_without_the_graph(
    crowded_partition,
):
    small, _, centre = crowded_partition
    plan = _exact_plan(small.id, centre)
    assert "text_emb_idx" not in plan, plan
    # One partition read (the organization's), through its btree, then a top-k sort.
    assert plan.count("Heap Scan on") == 1, plan
    assert f"Heap Scan on {selectors.micro_state_partition(org_id=small.id)} " in plan, plan
    assert "Sort" in plan, plan


@pytest.mark.django_db(transaction=True)
def test_the_exact_answer_for_an_embedder_without_states_reads_none_of_the_organizations(org_a):
    """A caller's own vector where the server embeds (or the reverse) finds nothing; the
    exact read behind it goes through the (org_id, embedder) index, not through every state of
    the organization. Committed and analysed as the owner, so that the plan is the one real
    statistics give (the runtime role may not ANALYZE)."""
    centre = unit(RNG.normal(size=768))
    add_states(org_a.id, [near(centre, 0.05) for _ in range(500)])
    partition = selectors.micro_state_partition(org_id=org_a.id)
    with as_owner(), connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {partition}")
    found = search(org_a.id, centre, k=10)
    assert len(found) == 10
    with org_context(org_a.id), transaction.atomic():
        plan = _exact_plan(org_a.id, centre, embedder="another-embedder")
    assert f"Bitmap Index Scan on {partition}_org_id_embedder_idx" in plan, plan
    assert "Rows Removed by Filter" not in plan, plan


def test_pgvector_version_is_checked_at_start():
    assert pgvector_problem("0.8.6") == ""
    assert pgvector_problem("0.9.0") == ""
    assert "pgvector 0.8.3 is installed; the memory needs 0.8.4 or newer" in pgvector_problem(
        "0.8.3"
    )
    assert "0.7.4" in pgvector_problem("0.7.4")
    assert "not installed" in pgvector_problem(None)


@pytest.mark.django_db
def test_the_installed_pgvector_passes_the_start_up_check():
    assert check_pgvector_version() == []


def test_an_embedder_that_cannot_start_is_a_start_up_error(settings):
    from memory.checks import check_embedder
    from memory.embeddings import embedder

    settings.MEMORY_EMBEDDER = "word2vec"
    embedder.cache_clear()
    try:
        errors = check_embedder()
    finally:
        embedder.cache_clear()
    assert [error.id for error in errors] == ["memory.E003"]
    assert "word2vec" in errors[0].msg
    settings.MEMORY_EMBEDDER = "http"
    settings.MEMORY_EMBEDDER_URL = "http://embeddings.internal/v1"
    settings.MEMORY_EMBEDDER_MODEL = "e5"
    settings.MEMORY_EMBEDDER_DIMENSION = 1024
    try:
        errors = check_embedder()
    finally:
        embedder.cache_clear()
    assert "1024" in errors[0].msg
