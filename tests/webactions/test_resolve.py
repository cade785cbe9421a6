"""Tier 2's scoring (webactions/resolve.py), without a page: the portal vocabulary, text
similarity, role compatibility, and when a repair is accepted or refused."""

import pytest

from webactions import resolve


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        ("Member ID", "Subscriber ID", 1.0),  # one field to the portal vocabulary
        ("Sign in", "Log in", 1.0),
        ("Verification code", "One-time passcode", 1.0),
        ("Coverage status", "Eligibility", 1.0),
        ("Group number", "Group #", 1.0),
        ("member_id", "Member ID", 1.0),  # an input's name attribute reads as words
        ("btnSearch", "Search", resolve.CONTAINED),  # camelCase split; contained
        ("Date of birth", "Patient date of birth", resolve.CONTAINED),
        ("Search", "Find patient", resolve.CONTAINED),
        ("Search", "Reset", 0.0),
        ("Coverage dates", "Coverage status", 0.0),  # "coverage" alone is not eligibility
        ("", "Search", 0.0),
    ],
)
def test_text_similarity_speaks_the_portals_vocabulary(first, second, expected):
    assert resolve.similarity(first, second) == pytest.approx(expected)
    assert resolve.similarity(second, first) == pytest.approx(expected)


def test_partly_alike_texts_score_by_dice():
    # {last_name} vs {last_name, patient}: contained; {show, out_of_network, benefits} vs
    # {include, out_of_network}: one word of five.
    assert resolve.similarity("Show out-of-network benefits", "Include out-of-network") == (
        pytest.approx(2 / 5)
    )


@pytest.mark.parametrize(
    ("tool", "target", "kind", "expected"),
    [
        ("fill", {"label": "Member ID"}, "textbox", 1.0),
        ("fill", {"label": "Member ID"}, "combobox", 0.5),
        ("fill", {"label": "Member ID"}, "button", 0.0),
        ("click", {"role": "button", "name": "Search"}, "button", 1.0),
        ("click", {"role": "button", "name": "Search"}, "link", 0.5),
        ("click", {"text": "New search"}, "link", 1.0),
        ("select", {"label": "Service type"}, "combobox", 1.0),
        ("check", {"label": "Out of network"}, "radio", 0.8),
        ("wait_for", {"text": "Benefits"}, "text", 1.0),
    ],
)
def test_role_compatibility(tool, target, kind, expected):
    assert resolve.role_compatibility(tool=tool, target=target, kind=kind) == expected


def _candidate(css, kind="textbox", **texts):
    return {"css": css, "kind": kind, **texts}


def test_the_remembered_element_repairs_a_reworded_field_and_the_margin_holds():
    remembered = {"label": "Member ID", "attr_name": "member_id", "id": "member_id"}
    candidates = [
        _candidate("#a", label="Last name", attr_name="last_name"),
        _candidate("#b", label="Subscriber ID", attr_name="member_id"),
        _candidate("#c", label="Patient date of birth", attr_name="dob"),
    ]
    scored = resolve.score_candidates(
        tool="fill", target={"label": "Member ID"}, remembered=remembered, candidates=candidates
    )
    verdict = resolve.choose(scored)
    assert verdict.chosen.candidate["css"] == "#b" and verdict.best.score == 1.0
    assert verdict.runner_up.score == pytest.approx(0.4)  # a text box, nothing alike
    assert verdict.figures == "score=1.00 runner_up=0.40"


def test_two_equally_good_candidates_are_a_tie():
    scored = resolve.score_candidates(
        tool="fill",
        target={"label": "Member ID"},
        remembered=None,
        candidates=[
            _candidate("#s", label="Subscriber ID"),
            _candidate("#m", label="Member number"),
        ],
    )
    verdict = resolve.choose(scored)
    assert verdict.chosen is None and verdict.reason.startswith("tie: 1.00 and 1.00")


def test_a_best_candidate_under_the_threshold_is_refused():
    scored = resolve.score_candidates(
        tool="click",
        target={"role": "button", "name": "Search"},
        remembered={"name": "Search", "nearby": "Show out-of-network benefits"},
        candidates=[
            _candidate("#go", kind="button", name="Go", nearby="Include out-of-network"),
            _candidate("#out", kind="button", name="Log out"),
        ],
    )
    verdict = resolve.choose(scored)
    # 0.4 (a button) + 0.6 x 0.6 (the text before it, weighted down) x 0.4 (Dice)
    assert verdict.best.score == pytest.approx(0.4 + 0.6 * resolve.NEARBY_WEIGHT * 0.4)
    assert verdict.chosen is None and verdict.reason.startswith("best score 0.54 < 0.75")


def test_no_candidate_at_all_is_said():
    assert resolve.choose([]).reason == "no candidate on the page"


def test_a_pages_words_and_how_alike_two_pages_are():
    search = (
        "<h1>Patient search</h1><label>Member ID</label><input name=member_id>"
        "<button>Search</button>"
    )
    redesign = (
        "<h1>Find a patient</h1><label>Subscriber ID<input name=member_id></label>"
        "<button>Find</button>"
    )
    other = "<h1>Claim status</h1><label>Claim #</label><input name=icn><button>Check</button>"
    words = {name: resolve.page_words(html) for name, html in
             (("search", search), ("redesign", redesign), ("other", other))}  # fmt: skip
    assert {"member_id", "search", "patient"} <= words["search"]
    assert resolve.page_likeness(words["search"], words["redesign"]) >= 0.45
    assert resolve.page_likeness(words["search"], words["other"]) < 0.45
    assert resolve.page_likeness(frozenset(), words["other"]) == 0.0
