"""Tier 3 of finding a page element: an OpenAI-compatible chat model picks one candidate.

Memory (tier 1) and scored repair (tier 2) come first; this is asked only when both gave up,
and only where an operator has set ``WEB_LLM_URL`` (off by default: what it is sent leaves the
platform). The caller gathers the candidate elements and gives each a key; ``choose`` sends
the step's goal, its target's description, the last ``STEPS_SENT`` steps and the first
``CANDIDATES_SENT`` candidates to ``{WEB_LLM_URL}/chat/completions`` and returns the key the
model named.

Every input text is masked before it is sent (``rcm/phi.py`` with the row's values declared,
then the login's secrets as ``[SECRET]``), and the prompt and the answer are kept masked for
the step's trace, on a failure too. The answer must be strict JSON: one object holding
``candidate`` (a key that was offered) and optionally ``reason``, nothing around it; anything
else is a ``ModelFailure`` and nothing is clicked. A refused answer is better than a wrong
click. There are no retries here: the caller decides whether another attempt is worth it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import httpx
from django.conf import settings

from rcm import phi

# The numbers: the recent steps place the step in its flow, and with a candidate's
# fields cut to 200 characters (its "nearby" text may be a paragraph; the start places it) the
# prompt stays under about 10,000 tokens at worst.
STEPS_SENT = 5
CANDIDATES_SENT = 25
CANDIDATE_FIELD_MAX_CHARS = 200
SECRET_PLACEHOLDER = "[SECRET]"
ANSWER_KEYS = frozenset({"candidate", "reason"})

LLM_UNAVAILABLE = "llm_unavailable"
LLM_TIMEOUT = "llm_timeout"
LLM_BAD_ANSWER = "llm_bad_answer"
LLM_UNKNOWN_CANDIDATE = "llm_unknown_candidate"

NOT_CONFIGURED = "The tier-3 model is off: WEB_LLM_URL is not set."
NO_CANDIDATES = "There are no candidates to choose from."
DUPLICATE_KEYS = "Two candidates have the same key (after masking); each needs its own."
UNREACHABLE = "The model provider at {host} could not be reached: {error}."
TIMED_OUT = "The model provider at {host} did not answer within {timeout_s} s."
BAD_STATUS = "The model provider at {host} answered HTTP {status}."
NOT_A_COMPLETION = (
    "The model provider at {host} gave no chat completion (no choices[0].message.content text)."
)
NOT_JSON = "The model's answer is not a JSON object alone (prose, a code fence or extra text)."
WRONG_SHAPE = (
    'The model\'s answer is not {{"candidate": "<key>"}} with an optional "reason" text: {problem}.'
)
NONE_FITS = "The model found no candidate that fits (it answered an empty candidate)."
UNKNOWN_CANDIDATE = "The model named a candidate that was not offered (offered: {keys})."

SYSTEM_PROMPT = (
    "You help a web automation agent on a health insurance payer portal find the page element "
    "a step should act on. The user message is a JSON object: the step's goal, a description "
    "of the target element, the last steps taken, and the candidate elements, each with a key. "
    "Patient data in them has been replaced by placeholders such as [MEMBER_ID].\n"
    "Answer with one JSON object and nothing else, no code fence, no text around it:\n"
    '{"candidate": "<the key of the element to act on>", "reason": "<a few words>"}\n'
    "The candidate must be one of the given keys. If none of them fits, answer "
    '{"candidate": "", "reason": "<why>"}.'
)


@dataclass(frozen=True)
class Candidate:
    """A page element the model may choose, as a person and assistive technology see it."""

    key: str  # the caller's handle for it ("c1"), what the model answers with
    role: str
    name: str  # its accessible name
    label: str
    placeholder: str
    nearby: str  # text near it on the page
    tag: str


@dataclass(frozen=True)
class Choice:
    """The model's pick, with what the step's trace keeps of the exchange (masked)."""

    key: str  # the chosen candidate's key
    model: str
    prompt: str  # the messages sent, as JSON text
    response: str  # the answer's content
    tokens: int | None  # usage.total_tokens, when the provider tells


class ModelFailure(Exception):
    """No usable pick. ``kind`` says why (``llm_unavailable``, ``llm_timeout``,
    ``llm_bad_answer``, ``llm_unknown_candidate``); the exchange so far, masked, goes into the
    trace all the same. The message quotes no input value."""

    def __init__(
        self,
        kind: str,
        message: str,
        *,
        model: str,
        prompt: str,
        response: str = "",
        tokens: int | None = None,
    ):
        super().__init__(message)
        self.kind = kind
        self.model = model
        self.prompt = prompt
        self.response = response
        self.tokens = tokens


def configured() -> bool:
    """Whether tier 3 is on (WEB_LLM_URL is set; the settings check the rest at start-up)."""
    return bool(settings.WEB_LLM_URL)


def choose(
    *,
    goal: str,
    target: str,
    steps: list[str],
    candidates: list[Candidate],
    declared: Iterable[Any] | Mapping[str, Any] = (),
    secrets: Iterable[str] = (),
) -> Choice:
    """Ask the configured model which candidate ``target`` is; ``declared``: the row's values
    (masked as ``phi.mask`` does), ``secrets``: the login's (masked as ``[SECRET]``)."""
    offered = candidates[:CANDIDATES_SENT]
    if not offered:
        raise ValueError(NO_CANDIDATES)
    mask = _masker(declared=declared, secrets=secrets)
    # The model answers with a key as it was sent (masked like every text): back to the caller's.
    keys = {mask(candidate.key): candidate.key for candidate in offered}
    if len(keys) < len(offered):
        raise ValueError(DUPLICATE_KEYS)
    messages = _messages(goal=goal, target=target, steps=steps, candidates=offered, mask=mask)
    exchange = _Exchange(
        model=settings.WEB_LLM_MODEL, prompt=json.dumps(messages, ensure_ascii=False)
    )
    if not configured():
        raise exchange.failure(LLM_UNAVAILABLE, NOT_CONFIGURED)
    content = _complete(messages, exchange=exchange)
    exchange.response = mask(content)
    answered = _answered_key(content, exchange=exchange)
    if answered not in keys:
        message = NONE_FITS if answered == "" else UNKNOWN_CANDIDATE.format(keys=", ".join(keys))
        raise exchange.failure(LLM_UNKNOWN_CANDIDATE, message)
    return Choice(
        key=keys[answered],
        model=exchange.model,
        prompt=exchange.prompt,
        response=exchange.response,
        tokens=exchange.tokens,
    )


# --- masking and the prompt ---------------------------------------------------------------


def _masker(
    *, declared: Iterable[Any] | Mapping[str, Any], secrets: Iterable[str]
) -> Callable[[str], str]:
    """The one mask every text sent or kept goes through: PHI (shapes and the row's declared
    values), then each secret.

    A secret is looked for both as it is and as the PHI mask leaves it: a password holding a
    date ("Ab 04/30/1980 c") is no longer whole once its date is masked, and the rest of it
    would go out. Longest first, so that a secret holding another goes whole.
    """
    forms = {
        form
        for secret in secrets
        if secret
        for form in (secret, phi.mask(secret, declared=declared))
    }
    ordered = sorted(forms, key=len, reverse=True)

    def mask(text: str) -> str:
        masked = phi.mask(text, declared=declared)
        for form in ordered:
            masked = masked.replace(form, SECRET_PLACEHOLDER)
        return masked

    return mask


def _messages(
    *,
    goal: str,
    target: str,
    steps: list[str],
    candidates: list[Candidate],
    mask: Callable[[str], str],
) -> list[dict[str, str]]:
    question = {
        "goal": mask(goal),
        "target": mask(target),
        "last_steps": [mask(step) for step in steps[-STEPS_SENT:]],
        "candidates": [_candidate_fields(candidate, mask=mask) for candidate in candidates],
    }
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": json.dumps(question, ensure_ascii=False)},
    ]


def _candidate_fields(candidate: Candidate, *, mask: Callable[[str], str]) -> dict[str, str]:
    """A candidate's key and its other non-empty fields, masked and then cut (cut first, a
    member ID could lose the shape that masks it)."""
    fields = {"key": mask(candidate.key)}
    for name, value in asdict(candidate).items():
        if value and name != "key":
            fields[name] = mask(value)[:CANDIDATE_FIELD_MAX_CHARS]
    return fields


# --- the exchange ---------------------------------------------------------------------------


@dataclass
class _Exchange:
    """What is known of one exchange so far, for the Choice or the failure."""

    model: str
    prompt: str
    response: str = ""
    tokens: int | None = None

    def failure(self, kind: str, message: str) -> ModelFailure:
        return ModelFailure(
            kind,
            message,
            model=self.model,
            prompt=self.prompt,
            response=self.response,
            tokens=self.tokens,
        )


def _complete(messages: list[dict[str, str]], *, exchange: _Exchange) -> str:
    """POST the messages; the answer's content, unmasked (the caller masks it to keep it)."""
    host = httpx.URL(settings.WEB_LLM_URL).host
    key = settings.WEB_LLM_API_KEY
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        response = httpx.post(
            settings.WEB_LLM_URL.rstrip("/") + "/chat/completions",
            json={
                "model": exchange.model,
                "temperature": 0,
                "response_format": {"type": "json_object"},
                "messages": messages,
            },
            headers=headers,
            timeout=settings.WEB_LLM_TIMEOUT_S,
        )
    except httpx.TimeoutException as exc:
        message = TIMED_OUT.format(host=host, timeout_s=settings.WEB_LLM_TIMEOUT_S)
        raise exchange.failure(LLM_TIMEOUT, message) from exc
    except httpx.HTTPError as exc:
        message = UNREACHABLE.format(host=host, error=type(exc).__name__)
        raise exchange.failure(LLM_UNAVAILABLE, message) from exc
    if response.status_code >= 400:
        message = BAD_STATUS.format(host=host, status=response.status_code)
        raise exchange.failure(LLM_UNAVAILABLE, message)
    return _content(response, host=host, exchange=exchange)


def _content(response: httpx.Response, *, host: str, exchange: _Exchange) -> str:
    """The first choice's message content; the usage's total tokens go to ``exchange``."""
    try:
        body = response.json()
    except ValueError:
        body = None
    exchange.tokens = _total_tokens(body)
    try:
        content = body["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        content = None
    if not isinstance(content, str):  # a refusal or a tool call has none
        raise exchange.failure(LLM_BAD_ANSWER, NOT_A_COMPLETION.format(host=host))
    return content


def _total_tokens(body: Any) -> int | None:
    usage = body.get("usage") if isinstance(body, dict) else None
    total = usage.get("total_tokens") if isinstance(usage, dict) else None
    if isinstance(total, int) and not isinstance(total, bool) and total >= 0:
        return total
    return None


def _answered_key(content: str, *, exchange: _Exchange) -> str:
    """The candidate the answer names. Strict: surrounding whitespace is the only leniency;
    a code fence or a sentence around the object makes it no answer."""
    try:
        answer = json.loads(content.strip())
    except ValueError:
        raise exchange.failure(LLM_BAD_ANSWER, NOT_JSON) from None
    if not isinstance(answer, dict):
        problem = "not an object"
    elif not set(answer) <= ANSWER_KEYS:
        problem = "keys other than candidate and reason"
    elif not isinstance(answer.get("candidate"), str):
        problem = "no candidate text"
    elif not isinstance(answer.get("reason", ""), str):
        problem = "a reason that is not text"
    else:
        return answer["candidate"]
    raise exchange.failure(LLM_BAD_ANSWER, WRONG_SHAPE.format(problem=problem))
