"""Tier 3's model provider (webactions/llm.py) against a real local stub of an OpenAI-compatible
chat endpoint, which records every request: what is sent (masked, bounded), what is kept for
the trace, and every way an answer is refused."""

from __future__ import annotations

import json
import socket
import time

import pytest

from tests.webactions.llm_stub import API_KEY, GOOD, MODES, TOTAL_TOKENS
from webactions import llm
from webactions.llm import Candidate, ModelFailure


def candidates(count: int) -> list[Candidate]:
    return [
        Candidate(
            key=f"c{number}", role="textbox", name=f"Field {number}", label="", placeholder="",
            nearby="", tag="input",
        )
        for number in range(1, count + 1)
    ]  # fmt: skip


def choose(**overrides) -> llm.Choice:
    question = {
        "goal": "Check the member's eligibility",
        "target": "the Member ID field",
        "steps": ["open the eligibility page"],
        "candidates": candidates(3),
    }
    return llm.choose(**{**question, **overrides})


def failure_of(**overrides) -> ModelFailure:
    with pytest.raises(ModelFailure) as failure:
        choose(**overrides)
    return failure.value


# --- a good answer ----------------------------------------------------------------------------


def test_a_good_answer_is_the_named_candidate_with_the_exchange_for_the_trace(provider):
    choice = choose()
    assert choice.key == "c2"
    assert choice.model == "stub-model"
    assert choice.tokens == TOTAL_TOKENS
    assert choice.response == GOOD
    (request,) = provider.requests
    assert json.loads(choice.prompt) == request.body["messages"]


def test_the_request_is_an_openai_chat_completion_asking_for_json(provider):
    choose()
    (request,) = provider.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert request.body["model"] == "stub-model"
    assert request.body["temperature"] == 0
    assert request.body["response_format"] == {"type": "json_object"}
    system, user = request.body["messages"]
    assert (system["role"], user["role"]) == ("system", "user")
    assert '{"candidate": "<the key of the element to act on>"' in system["content"]
    assert provider.question() == {
        "goal": "Check the member's eligibility",
        "target": "the Member ID field",
        "last_steps": ["open the eligibility page"],
        "candidates": [
            {"key": f"c{n}", "role": "textbox", "name": f"Field {n}", "tag": "input"}
            for n in (1, 2, 3)
        ],
    }


def test_no_authorization_header_without_a_key(provider, settings):
    settings.WEB_LLM_API_KEY = ""
    choose()
    assert "Authorization" not in provider.requests[0].headers


def test_only_the_last_5_steps_and_the_first_25_candidates_are_sent(provider):
    choose(steps=[f"step {n}" for n in range(1, 9)], candidates=candidates(30))
    question = provider.question()
    assert question["last_steps"] == ["step 4", "step 5", "step 6", "step 7", "step 8"]
    assert [candidate["key"] for candidate in question["candidates"]] == [
        f"c{n}" for n in range(1, 26)
    ]


def test_a_candidate_that_was_not_sent_cannot_be_chosen(provider):
    provider.content = '{"candidate": "c26"}'
    failure = failure_of(candidates=candidates(30))
    assert failure.kind == llm.LLM_UNKNOWN_CANDIDATE


def test_whitespace_around_the_answer_is_allowed(provider):
    provider.content = '\n  {"candidate": "c3"}\n'
    assert choose().key == "c3"


# --- answers that are refused -----------------------------------------------------------------


@pytest.mark.parametrize(
    "mode, kind, message",
    [
        ("prose", llm.LLM_BAD_ANSWER, llm.NOT_JSON),
        ("fenced", llm.LLM_BAD_ANSWER, llm.NOT_JSON),
        ("unknown", llm.LLM_UNKNOWN_CANDIDATE, llm.UNKNOWN_CANDIDATE.format(keys="c1, c2, c3")),
        ("error", llm.LLM_UNAVAILABLE, "answered HTTP 500"),
    ],
)
def test_a_bad_answer_is_a_model_failure_of_its_kind(provider, mode, kind, message):
    provider.mode = mode
    failure = failure_of()
    assert failure.kind == kind
    assert message in str(failure)
    # Traced all the same: what was asked, and what came back.
    assert json.loads(failure.prompt) == provider.requests[0].body["messages"]
    assert failure.model == "stub-model"
    if mode != "error":
        assert failure.response == MODES[mode][1]
        assert failure.tokens == TOTAL_TOKENS


@pytest.mark.parametrize(
    "content, problem",
    [
        ('["c2"]', "not an object"),
        ('"c2"', "not an object"),
        ('{"candidate": "c2", "confidence": 0.9}', "keys other than candidate and reason"),
        ('{"reason": "the Member ID field"}', "no candidate text"),
        ('{"candidate": 2}', "no candidate text"),
        ('{"candidate": null}', "no candidate text"),
        ('{"candidate": "c2", "reason": ["labelled"]}', "a reason that is not text"),
    ],
)
def test_json_of_another_shape_is_a_bad_answer(provider, content, problem):
    provider.content = content
    failure = failure_of()
    assert failure.kind == llm.LLM_BAD_ANSWER
    assert str(failure) == llm.WRONG_SHAPE.format(problem=problem)


@pytest.mark.parametrize("content", ['{"candidate": "c2"} c2', 'Answer: {"candidate": "c2"}'])
def test_text_around_the_json_is_a_bad_answer(provider, content):
    provider.content = content
    assert str(failure_of()) == llm.NOT_JSON


def test_an_empty_candidate_says_none_fits(provider):
    provider.content = '{"candidate": "", "reason": "no search field on this page"}'
    failure = failure_of()
    assert failure.kind == llm.LLM_UNKNOWN_CANDIDATE
    assert str(failure) == llm.NONE_FITS


def test_a_completion_without_content_is_a_bad_answer(provider):
    provider.completion = lambda content: {"choices": [{"message": {"refusal": "no"}}]}
    failure = failure_of()
    assert failure.kind == llm.LLM_BAD_ANSWER
    assert "no choices[0].message.content" in str(failure)


def test_a_slow_provider_is_a_timeout(provider, settings):
    settings.WEB_LLM_TIMEOUT_S = 0.2
    provider.mode = "slow"
    started = time.monotonic()
    failure = failure_of()
    assert failure.kind == llm.LLM_TIMEOUT
    assert str(failure) == llm.TIMED_OUT.format(host="127.0.0.1", timeout_s=0.2)
    assert time.monotonic() - started < 0.5


def test_an_unreachable_provider_is_unavailable(settings):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    settings.WEB_LLM_URL, settings.WEB_LLM_MODEL = f"http://127.0.0.1:{port}/v1", "stub-model"
    failure = failure_of()
    assert failure.kind == llm.LLM_UNAVAILABLE
    assert "could not be reached: ConnectError" in str(failure)


def test_tier_3_is_off_by_default(settings):
    settings.WEB_LLM_URL = ""
    assert not llm.configured()
    failure = failure_of()
    assert (failure.kind, str(failure)) == (llm.LLM_UNAVAILABLE, llm.NOT_CONFIGURED)


def test_the_model_needs_candidates_with_keys_of_their_own(provider):
    with pytest.raises(ValueError, match=llm.NO_CANDIDATES):
        choose(candidates=[])
    with pytest.raises(ValueError, match="same key"):
        choose(candidates=candidates(2) + candidates(1))
    assert provider.requests == []


# --- nothing of the patient's, nothing secret -------------------------------------------------

DECLARED = {"last_name": "Okonkwo", "member_id": "W123456789", "dob": "1980-04-30"}
SECRET = "hunter2-Secret"
NEVER_SENT = ("W123456789", "Okonkwo", "04/30/1980", "1980-04-30", SECRET)
# The answer echoes them all, as a model that read them unmasked might.
ECHO = "for Okonkwo, member W123456789, born 04/30/1980, password hunter2-Secret"


def patients_question() -> dict:
    return {
        "goal": "Check eligibility for member W123456789 (Okonkwo, born 04/30/1980)",
        "target": "the Member ID field for Okonkwo",
        "steps": [
            "fill Member ID with W123456789",
            "fill Last Name with Okonkwo",
            "fill Date of Birth with 04/30/1980",
            f"fill Password with {SECRET}",
        ],
        "candidates": [
            Candidate(
                key="c1", role="textbox", name="Member ID", label="Member ID: W123456789",
                placeholder="W123456789", nearby="Patient OKONKWO, DOB 04/30/1980", tag="input",
            ),
            Candidate(
                key="c2", role="button", name="Search", label="", placeholder="",
                nearby=f"Signed in ({SECRET})", tag="button",
            ),
        ],
        "declared": DECLARED,
        "secrets": [SECRET, ""],
    }  # fmt: skip


def assert_nothing_leaked(*texts: str) -> None:
    for text in texts:
        for value in NEVER_SENT:
            assert value.lower() not in text.lower()


def test_no_input_value_and_no_secret_reaches_the_provider_or_the_trace(provider):
    provider.content = json.dumps({"candidate": "c1", "reason": ECHO})
    choice = llm.choose(**patients_question())
    assert choice.key == "c1"
    (request,) = provider.requests
    assert_nothing_leaked(request.raw, json.dumps(request.headers), choice.prompt, choice.response)
    # Masked, not dropped: the model still reads what kind of value stood there.
    for placeholder in ("[MEMBER_ID]", "[LAST_NAME]", "[DOB]", "[SECRET]"):
        assert placeholder in request.raw
        assert placeholder in choice.response


def test_a_failure_keeps_the_exchange_masked_too(provider):
    provider.content = f"I would pick the Member ID field {ECHO}"
    with pytest.raises(ModelFailure) as failure:
        llm.choose(**patients_question())
    assert failure.value.kind == llm.LLM_BAD_ANSWER
    assert_nothing_leaked(failure.value.prompt, failure.value.response, str(failure.value))
    assert "[SECRET]" in failure.value.response


def test_a_secret_holding_patient_data_is_masked_whole(provider):
    # The PHI mask alone would leave "Spring" and "!" of this password around [DOB].
    secret = "Spring 04/30/1980!"
    choose(steps=[f"fill Password with {secret}"], declared=DECLARED, secrets=[secret])
    assert provider.question()["last_steps"] == ["fill Password with [SECRET]"]
