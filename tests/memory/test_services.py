"""The memory's services on real PostgreSQL + pgvector: the same-page rule, masking before
storing, success scoring, retirement, aliases and re-embedding."""

import numpy as np
import pytest
from django.core.management import call_command
from django.db import connection

from memory import selectors, services
from memory.embeddings import embedder
from memory.models import MicroState
from rcm.context import org_context
from rcm.errors import ApplicationError, Conflict
from tests.helpers import portal_page as page
from tests.workflows.factories import entry, general, outcome, workflow_build

ACTION = {"tool": "fill", "target": {"label": "Member ID"}, "value": "{{ input.member_id }}"}


def store(**kwargs) -> services.Stored:
    kwargs.setdefault("action_json", ACTION)
    return services.micro_state_store(**kwargs)


@pytest.fixture
def in_a(org_a):
    with org_context(org_a.id):
        yield org_a


def test_the_same_page_for_another_patient_reuses_the_state(in_a):
    first = store(dom_snapshot=page("eligibility_patient_a"), url="https://portal.test/elig")
    again = store(dom_snapshot=page("eligibility_patient_b"), url="https://portal.test/elig")
    assert first.decision == services.INSERTED and first.similarity is None
    assert again.decision == services.REUSED
    assert again.state.pk == first.state.pk
    assert again.similarity >= 0.9
    assert MicroState.objects.count() == 1


def test_a_repaired_action_replaces_the_state_and_aliases_the_old_one(in_a):
    old = store(dom_snapshot=page("eligibility_patient_a")).state
    repaired = {"tool": "click", "target": {"role": "button", "name": "View benefits"}}
    new = store(dom_snapshot=page("eligibility_redesign"), action_json=repaired, repaired=True)
    assert new.decision == services.REPLACED
    old.refresh_from_db()
    assert old.is_retired and old.aliased_to_id == new.state.pk
    assert new.state.action_json == repaired and not new.state.is_retired


def test_a_different_page_is_a_new_state(in_a):
    store(dom_snapshot=page("eligibility_patient_a"))
    other = store(dom_snapshot=page("claim_status"))
    assert other.decision == services.INSERTED
    assert other.similarity < 0.8
    assert MicroState.objects.count() == 2


def test_the_same_page_in_another_workflow_step_is_its_own_state(in_a):
    workflow, _ = workflow_build(
        org_id=in_a.id,
        nodes=[entry(), general("search"), outcome()],
        edges=["start->search->done"],
    )
    store(dom_snapshot=page("patient_search"))
    scoped = store(dom_snapshot=page("patient_search"), workflow=workflow)
    assert scoped.decision == services.INSERTED
    assert store(dom_snapshot=page("patient_search"), workflow=workflow).decision == "reused"


def test_nothing_declared_as_phi_is_stored(in_a):
    declared = {"first_name": "Maria", "last_name": "Gonzalez", "member_id": "W123456789"}
    dom = (
        "<main><h1>Eligibility</h1><p>Patient: Maria Gonzalez</p>"
        "<dl><dt>Member ID</dt><dd>W123456789</dd><dt>DOB</dt><dd>03/14/1962</dd></dl>"
        "<a href='/elig?member=W123456789'>Refresh</a></main>"
    )
    action = {"tool": "fill", "value": "W123456789", "note": "Maria's card"}
    state = store(
        dom_snapshot=dom,
        action_json=action,
        url="https://portal.test/patients/W123456789/elig?name=Maria",
        label="Eligibility of Maria Gonzalez",
        declared_phi=declared,
    ).state
    stored = MicroState.objects.filter(pk=state.pk).values().get()
    text = str(stored)
    for value in ("Maria", "Gonzalez", "W123456789", "03/14/1962"):
        assert value not in text
    assert "[MEMBER_ID]" in state.dom_snapshot and "[FIRST_NAME]" in state.dom_snapshot
    assert state.url_pattern == "https://portal.test/patients/{id}/elig"
    assert state.label == "Eligibility of [FIRST_NAME] [LAST_NAME]"
    with_name_in_path = store(
        dom_snapshot=page("login"), url="/members/gonzalez/card", declared_phi=declared
    ).state
    assert with_name_in_path.url_pattern == "/members/[LAST_NAME]/card"


def test_is_dynamic_follows_the_semantic_spec(in_a):
    plain = store(dom_snapshot=page("login")).state
    dynamic = store(
        dom_snapshot=page("claim_status"), semantic_spec={"dynamic_meta": {"field": "claim"}}
    ).state
    assert plain.is_dynamic is False and dynamic.is_dynamic is True


def test_a_callers_embedding_is_normalised_and_compared_only_with_its_kind(in_a):
    vector = [3.0] + [0.0] * 766 + [4.0]
    mine = store(dom_snapshot=page("login"), text_emb=vector).state
    assert mine.embedder == selectors.CLIENT_EMBEDDER
    assert np.isclose(np.linalg.norm(mine.text_emb), 1.0)
    assert np.isclose(mine.text_emb[0], 0.6)
    # The structural embedder's states never meet the caller's: the same page is new to it.
    assert store(dom_snapshot=page("login")).decision == services.INSERTED


@pytest.mark.parametrize("scale", [1e300, 1e-300])
def test_an_embedding_past_float32s_range_is_normalised_not_nan(in_a, scale):
    # Found by the fuzz test: float32 made these inf or 0, the vector NaN, and pgvector a 500.
    state = store(dom_snapshot=page("login"), text_emb=[3 * scale] + [0.0] * 766 + [4 * scale])
    assert np.isclose(state.state.text_emb[0], 0.6) and np.isclose(state.state.text_emb[-1], 0.8)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([0.1] * 767, "exactly 768 numbers; this one has 767"),
        ([0.1] * 767 + [float("nan")], "item 767 is nan"),
        ([float("inf")] + [0.1] * 767, "item 0 is inf"),
        ([0.0] * 768, "all zeros"),
        (["0.1"] * 768, "item 0 is 0.1"),
    ],
)
def test_bad_embeddings_are_refused_and_nothing_is_written(in_a, values, message):
    with pytest.raises(ApplicationError, match=message):
        store(dom_snapshot=page("login"), text_emb=values)
    assert MicroState.objects.count() == 0


def test_an_empty_or_oversized_dom_is_refused(in_a, settings):
    with pytest.raises(ApplicationError) as empty:
        store(dom_snapshot="  \n ")
    assert empty.value.status == 400 and empty.value.message == services.EMPTY_DOM
    settings.MEMORY_MAX_DOM_BYTES = 1000
    with pytest.raises(ApplicationError) as large:
        store(dom_snapshot="<p>" + "é" * 600 + "</p>")  # 1207 bytes in UTF-8
    assert large.value.status == 413
    assert "1207 bytes; the largest accepted is 1000" in large.value.message
    assert MicroState.objects.count() == 0


def test_success_is_an_average_and_a_failing_state_retires_itself(in_a):
    state = store(dom_snapshot=page("login")).state
    state = services.micro_state_outcome_record(state=state, success=True)
    assert state.success_ema == pytest.approx(1.0) and state.success_count == 1
    expected = 1.0
    for failures in range(1, 6):
        state = services.micro_state_outcome_record(state=state, success=False)
        expected = 0.8 * expected
        assert state.success_ema == pytest.approx(expected)
        assert state.failure_count == failures
        # 0.8^5 = 0.33: still above 0.3 after five failures.
        assert not state.is_retired
    state = services.micro_state_outcome_record(state=state, success=False)
    assert state.success_ema == pytest.approx(0.8**6)
    assert state.is_retired


def test_a_low_average_retires_only_after_enough_outcomes(in_a, settings):
    settings.MEMORY_EMA_ALPHA = 0.9
    state = store(dom_snapshot=page("login")).state
    for _ in range(4):
        state = services.micro_state_outcome_record(state=state, success=False)
    assert state.success_ema < 0.3 and not state.is_retired  # four outcomes: too few to judge
    state = services.micro_state_outcome_record(state=state, success=False)
    assert state.is_retired


def test_retire_alias_and_unretire(in_a):
    first = store(dom_snapshot=page("login")).state
    second = store(dom_snapshot=page("claim_status")).state
    third = store(dom_snapshot=page("prior_authorization")).state
    services.micro_state_retire(state=first, aliased_to=second)
    services.micro_state_retire(state=second, aliased_to=third)
    with pytest.raises(Conflict, match="aliased to this one"):
        services.micro_state_retire(state=third, aliased_to=first)
    with pytest.raises(Conflict, match="itself"):
        services.micro_state_retire(state=third, aliased_to=third)
    for _ in range(6):
        services.micro_state_outcome_record(state=third, success=False)
    revived = services.micro_state_unretire(state=third)
    assert not revived.is_retired and revived.aliased_to_id is None
    assert revived.success_ema == 1.0 and revived.failure_count == 0


def test_an_alias_never_crosses_organizations(org_a, org_b):
    with org_context(org_b.id):
        theirs = store(dom_snapshot=page("login")).state
    with org_context(org_a.id):
        mine = store(dom_snapshot=page("login")).state
        with pytest.raises(Exception, match="micro_state_aliased_to_fk"), connection.cursor() as c:
            c.execute(
                "UPDATE micro_state SET aliased_to = %s WHERE micro_state_id = %s",
                [theirs.pk, mine.pk],
            )
            c.execute("SET CONSTRAINTS ALL IMMEDIATE")


def test_reembed_redoes_states_of_another_embedder_with_a_progress_bar(in_a, capsys):
    states = [store(dom_snapshot=page(name)).state for name in ("login", "claim_status")]
    client_state = store(dom_snapshot=page("benefit_details"), text_emb=[1.0] * 768).state
    MicroState.objects.filter(pk__in=[s.pk for s in states]).update(
        embedder="old-model", text_emb=[0.0] * 767 + [1.0]
    )
    call_command("memory_reembed", "--org", str(in_a.id))
    out, err = capsys.readouterr()
    assert "Re-embedded 2 states in 1 organizations." in out
    assert "[####" in err  # the progress bar
    current = embedder()
    for state in states:
        state.refresh_from_db()
        assert state.embedder == current.model_id
        expected = current.embed_page(state.dom_snapshot, state.url_pattern)
        assert np.allclose(state.text_emb, expected, atol=1e-6)
    client_state.refresh_from_db()
    assert client_state.embedder == selectors.CLIENT_EMBEDDER  # only the caller's model can


def test_reembed_without_org_covers_every_organization(org_a, org_b, capsys):
    for tenant in (org_a, org_b):
        with org_context(tenant.id):
            state = store(dom_snapshot=page("login")).state
            MicroState.objects.filter(pk=state.pk).update(embedder="old-model")
    call_command("memory_reembed")
    assert "Re-embedded 2 states in 2 organizations." in capsys.readouterr().out


def test_reembed_refuses_an_unknown_org(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="must be an organization id"):
        call_command("memory_reembed", "--org", "nope")
    with pytest.raises(CommandError, match="No active organization"):
        call_command("memory_reembed", "--org", "00000000-0000-0000-0000-000000000001")
