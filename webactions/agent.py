"""The web agent's tiers: how an action's target is found on the page, and what is learnt.

Before an action with a target, the page is masked (rcm/phi.py, with the row's inputs and the
credential's values declared), embedded, and the organization's memory searched for the state
of this step (webactions/services/agent_memory.py, through the task thread: ``Memory``).

* **Tier 1, memory.** A state at the same-page threshold (MEMORY_SAME_PAGE_THRESHOLD, 0.80)
  holds the element that worked there. It is used only if it still holds: its selector finds
  exactly one element, a person could use it (visible, enabled, inside the page, not covered,
  its text part of its name) and it is still of the same kind with the same name. Otherwise
  the reason (``validation_failed:hidden``) is kept and tier 2 goes on.
* **Tier 2, the page scored** (webactions/resolve.py). The description itself, matched
  exactly to one usable element, is taken at score 1 — how a step is first learnt. Otherwise,
  when the page is recognisably the remembered one (similarity at least ``GATE``, 0.45), every
  element is scored against the description and the remembered element; the best is taken at
  0.75 or above with a clear margin over the runner-up, and if a person could use it.
* **Tier 3, a model** (webactions/llm.py), only when one is configured: the goal, the target,
  the last steps and the best 25 candidates, all masked; its answer must name one of them.

What tier 2 or 3 found is written back after the action worked: a new state of the page with
that element, retiring the one it repairs when the page is the same. The next row is tier 1
again. A refused action is better than the wrong one: without an answer, the action fails,
naming the target and why.
"""

from __future__ import annotations

import collections
import hashlib
import json
import time
from dataclasses import dataclass

from django.conf import settings

from memory.services import url_pattern_of
from rcm import phi
from webactions import llm, resolve
from webactions.actions import describe
from webactions.executor import (
    NAVIGATES_JS,
    UNUSABLE,
    UNUSABLE_JS,
    ActionFailed,
    ActionResult,
    address_of,
    probe,
    values_beside,
)
from webactions.services import agent_memory

# The page must be at least this like the remembered one for its elements to be repaired onto:
# below it, it is another page (an error page, a maintenance notice), where a near name is a
# coincidence. (Measured on the sandbox: a redesign of one page 0.46, two different pages of
# one portal 0.02-0.08.)
GATE = 0.45
# The element each step last used in this process (step -> selector), checked with the next
# read of the page: a guess that saves a trip to the page when memory confirms it.
_GUESSES: collections.OrderedDict[tuple, str] = collections.OrderedDict()
MAX_GUESSES = 2_048
# How long a target is waited for on a page memory does not recognise for its step.
UNRECOGNISED_WAIT_MS = 1_000
# A page is cut to this before it is masked and embedded: its structure is in the first part.
MAX_SNAPSHOT_CHARS = 500_000

_ELEMENT = f"e => {{ {resolve.ELEMENT_JS} return describeElement(e); }}"
_CANDIDATES = (
    f"([selector, limit]) => {{ {resolve.ELEMENT_JS} return [...document.querySelectorAll("
    "selector)].filter(rendered).slice(0, limit).map(describeElement); }"
)
# A probe (executor.probe) that also describes the single match, for the memory.
_PROBE_DESCRIBED = (
    f"els => {{ {resolve.ELEMENT_JS} return els.length === 1 ? [1, ({UNUSABLE_JS})(els[0]), "
    f"({NAVIGATES_JS})(els[0]), describeElement(els[0])] : [els.length, '', false, null]; }}"
)
# Tier 1's check of a remembered element, in one trip to the page: how many the selector finds
# and, for one, why a person could not use it, whether clicking it loads a page, its kind and
# its name (not the rest of its description: the text before it is a walk through the page).
_VALIDATE = (
    f"css => {{ {resolve.ELEMENT_JS} const els = document.querySelectorAll(css); "
    f"if (els.length !== 1) return [els.length, '', false, '', '']; const e = els[0]; "
    f"return [1, ({UNUSABLE_JS})(e), ({NAVIGATES_JS})(e), kindOf(e), nameOf(e)]; }}"
)
# The page's DOM, and the check of the element this process last used for the step (the one
# memory will most likely return): on a known page, one trip to the page for both.
_READ = (
    "css => { const html = document.documentElement.outerHTML; if (!css) return [html, null, 0];"
    f" const started = performance.now(); try {{ const checked = ({_VALIDATE})(css); "
    "return [html, checked, performance.now() - started]; } catch (e) { return [html, null, 0]; } }"
)
# The texts that label a value beside them (executor._VALUE_BESIDE): table header cells and
# definition terms with a value after them.
_VALUE_LABELS = """() => [...new Set([...document.querySelectorAll('th, dt')]
    .filter(e => e.nextElementSibling)
    .map(e => e.textContent.replace(/\\s+/g, ' ').trim()).filter(Boolean))].slice(0, 400)"""


class _Clock:
    """Laps of a resolution, in ms, into ``timings`` (the trace's latency, by part)."""

    def __init__(self, timings: dict[str, float]):
        self.timings = timings
        self.last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.timings[name] = round((now - self.last) * 1000, 2)
        self.last = now


def step_key(phase: str, number: int, action: dict) -> str:
    """Which step a state belongs to: the phase, the action's place and tool, and a digest of
    what it looks for — the workflow's words, never a row's values (a changed description
    starts a new memory)."""
    looked_for = {key: action[key] for key in ("tool", "target", "fields") if key in action}
    digest = hashlib.sha256(json.dumps(looked_for, sort_keys=True).encode()).hexdigest()[:16]
    return f"{phase}:{number}:{action['tool']}:{digest}"


@dataclass
class Snapshot:
    dom: str  # masked
    url: str  # the URL's pattern, masked
    vector: object
    guess: str = ""  # the selector checked with the read
    guessed: list | None = None  # its check (_VALIDATE's answer)
    _words: frozenset[str] | None = None

    @property
    def words(self) -> frozenset[str]:
        """What the page says about itself (parsed once, and only when a tier needs it)."""
        if self._words is None:
            self._words = resolve.page_words(self.dom)
        return self._words


class Memory:
    """The memory as the browser thread sees it: snapshots made here, searches and writes
    carried out by the task thread (``relay``) in the organization's context."""

    def __init__(self, *, relay, scope, embedder, declared: dict, secrets: tuple[str, ...]):
        self.relay = relay
        self.scope = scope
        self.embedder = embedder
        self.declared = declared
        self.secrets = secrets
        # The row's values under their names ([MEMBER_ID]), the credential's as [CREDENTIAL]:
        # one pass over a page for both, prepared once for the attempt's pages.
        self.mask = phi.masker(
            {**declared, **{f"credential {n}": value for n, value in enumerate(secrets)}}
        )

    def snapshot(self, page, timings: dict[str, float], guess: str = "") -> Snapshot | None:
        """The page as memory knows pages: masked and embedded, with the check of the element
        at ``guess`` (a selector) read in the same trip (``timings`` gets how long reading,
        masking and embedding took)."""
        clock = _Clock(timings)
        html, guessed, checked_ms = page.evaluate(_READ, guess)
        html = html[:MAX_SNAPSHOT_CHARS]
        clock.lap("read")
        # The guessed element's check ran in the page during the read: it is the check's time.
        timings["read"] = round(timings["read"] - checked_ms, 2)
        timings["check"] = round(checked_ms, 2)
        dom = self.mask(html)
        url = self.mask(url_pattern_of(page.url))
        clock.lap("mask")
        try:
            vector = self.embedder.embed_page(dom, url)
        except ValueError:  # a page with nothing to recognise it by (blank, an image)
            return None
        clock.lap("embed")
        return Snapshot(dom, url, vector, guess=guess, guessed=guessed)

    def recall(self, phase: str, step: str, snapshot: Snapshot) -> agent_memory.Recalled | None:
        try:
            return self.relay.call(
                agent_memory.state_recall,
                scope=self.scope.for_phase(phase),
                step_key=step,
                vector=snapshot.vector,
                embedder=self.embedder.model_id,
            )
        except Exception as exc:  # the database or the task thread: retried like a 5xx
            raise ActionFailed(
                "memory_unavailable", f"the memory could not be searched ({type(exc).__name__})"
            ) from exc

    def remember(self, phase, step, snapshot: Snapshot, action: dict, repaired: bool) -> None:
        self.relay.post(
            agent_memory.state_remember,
            scope=self.scope.for_phase(phase),
            step_key=step,
            dom=snapshot.dom,
            url=snapshot.url,
            action=self.mask(action),
            label=describe(action["target"]) if "target" in action else "extract",
            words=sorted(snapshot.words),
            repaired=repaired,
            declared=self.declared,
        )

    def outcome(self, state_id: int, success: bool) -> None:
        self.relay.post(agent_memory.state_outcome, state_id=state_id, success=success)


@dataclass(frozen=True)
class _ModelTurn:
    """What tier 3 is asked with, when tiers 1 and 2 gave up on an action."""

    action: dict
    result: ActionResult
    scored: list  # resolve.Scored, best first
    usable: bool
    prefix: str
    recalled: agent_memory.Recalled | None
    started: float


@dataclass
class _Learnt:
    """What an action's resolution leaves for after it: the state to credit, or the
    element to remember."""

    step: str
    snapshot: Snapshot | None
    state_id: int | None = None  # tier 1: the state used; else the one that failed validation
    remember: dict | None = None  # tier 2/3: the action with the element that worked
    repaired: bool = False


class Agent:
    """Resolves the targets of one action list through the tiers and writes back what it
    learnt. Without ``memory`` (no scope to learn in), only the exact description is used."""

    def __init__(self, *, memory: Memory | None, phase: str, capture=None):
        self.memory = memory
        self.phase = phase
        # capture(page, name): keeps a picture of the page a target was repaired on.
        self.capture = capture
        self.history: list[str] = []  # the steps so far, as a model is told them
        self._learnt: _Learnt | None = None

    # -- elements -----------------------------------------------------------------------------

    def element(self, page, action: dict, result: ActionResult, limit: int, *, usable: bool):
        """The one element ``action``'s target is on this page, and whether clicking it loads
        a page; or ActionFailed naming the target and why none was taken."""
        target = action["target"]
        started, timings, snapshot, recalled = self._recall(page, action, result)
        prefix = "miss; "
        if _same_page(recalled):
            remembered = recalled.action.get("element") or {}
            clock = _Clock(timings)
            problem, found, navigates = self._validate(page, remembered, usable, snapshot)
            before = timings.get("check", 0.0)
            clock.lap("check")
            timings["check"] = round(timings["check"] + before, 2)
            self._learnt.state_id = recalled.state_id
            if not problem:
                self._resolved(result, 1, "hit", recalled, remembered, started)
                return found, navigates
            prefix = f"validation_failed:{problem}; "
        gated = _recognised(snapshot, recalled)
        remembered = (recalled.action.get("element") if gated else None) or None
        # Without a remembered page, the target may still be on its way (a page drawing it):
        # wait for it. On a page recognised as the remembered one, a target that is not there
        # by its description has drifted; on another page (a log-in page where the search was
        # expected), it is not coming: a short wait for a page still drawing, not the whole.
        if remembered is not None:
            wait_ms = 0
        elif recalled is not None:
            wait_ms = min(limit, UNRECOGNISED_WAIT_MS)
        else:
            wait_ms = limit
        found, how, answer = probe(page, target, wait_ms, usable=usable, script=_PROBE_DESCRIBED)
        count, why, navigates, described = answer
        candidates = page.evaluate(
            _CANDIDATES, [resolve.CANDIDATE_SELECTOR, resolve.MAX_CANDIDATES]
        )
        scored = resolve.score_candidates(
            tool=action["tool"], target=target, remembered=remembered, candidates=candidates
        )
        if count == 1 and not (usable and why):
            runner_up = next(
                (entry for entry in scored if entry.candidate["css"] != described["css"]), None
            )
            word = "repaired" if prefix != "miss; " else "matched"
            figures = f"score=1.00 runner_up={runner_up.score:.2f}" if runner_up else "score=1.00"
            result.resolved = how
            self._repaired(result, action, described, f"{prefix}{word} {figures}", recalled)
            self._resolved(result, 2, result.tier_reason, recalled, described, started)
            return found, navigates
        model = _ModelTurn(action, result, scored, usable, prefix, recalled, started)
        if remembered is None:
            refusal = self._refused(
                result, page, target, prefix, count, why, _no_gate(snapshot, recalled), None,
                recalled,
            )  # fmt: skip
            return self._ask_model(page, model, refusal)
        verdict = resolve.choose(scored)
        if verdict.chosen is None:
            refusal = self._refused(
                result, page, target, prefix, count, why, verdict.reason, verdict, recalled
            )
            return self._ask_model(page, model, refusal)
        chosen = verdict.chosen.candidate
        found = page.locator(chosen["css"])
        checked = found.evaluate_all(_PROBE_DESCRIBED)
        if checked[0] != 1 or (usable and checked[1]):
            reason = UNUSABLE.get(checked[1], "no longer on the page")
            refusal = self._refused(
                result, page, target, prefix, count, checked[1] or why,
                f"the best candidate {reason}", verdict, recalled,
            )  # fmt: skip
            return self._ask_model(page, model, refusal)
        result.resolved = f"repaired: {resolve.summary(chosen)}"
        result.repair = {
            "before": resolve.summary(remembered),
            "after": resolve.summary(chosen),
            "score": verdict.best.score,
            "runner_up": resolve.summary(verdict.runner_up.candidate) if verdict.runner_up else "",
            "runner_up_score": verdict.runner_up.score if verdict.runner_up else None,
        }
        if self.capture is not None:
            result.repair["screenshot"] = f"repair-{self.phase}-action-{result.number}"
            self.capture(page, result.repair["screenshot"])
        self._repaired(result, action, checked[3], f"{prefix}repaired {verdict.figures}", recalled)
        self._resolved(result, 2, result.tier_reason, recalled, checked[3], started)
        return found, checked[2]

    def _ask_model(self, page, turn: _ModelTurn, refusal: ActionFailed):
        """Tier 3: the model names one of the best-scored candidates, which must be usable;
        without a model configured, ``refusal`` stands."""
        if not llm.configured():
            raise refusal
        result, target = turn.result, turn.action["target"]
        ranked = turn.scored[: llm.CANDIDATES_SENT]
        offered = {f"c{number}": entry.candidate for number, entry in enumerate(ranked, 1)}
        tier2 = result.tier_reason.split("miss: ", 1)[-1]
        try:
            choice = llm.choose(
                goal=f"On a payer portal, {turn.action['tool']} {describe(target)} "
                f"(step {result.number} of the {self.phase})",
                target=describe(target),
                steps=self.history,
                candidates=[_model_candidate(key, element) for key, element in offered.items()],
                declared=self.memory.declared,
                secrets=self.memory.secrets,
            )
        except llm.ModelFailure as failure:
            result.llm = _exchange(failure)
            result.tier_reason = f"{_after(turn.prefix)}miss: {tier2}; llm failed: {failure}"
            raise ActionFailed(
                failure.kind,
                f"action {result.number} ({result.tool}): {describe(target)} was not found on "
                f"{address_of(page.url)} and the model gave no usable answer ({failure}); "
                "nothing was done",
            ) from failure
        result.llm = _exchange(choice)
        chosen = offered[choice.key]
        found = page.locator(chosen["css"])
        checked = found.evaluate_all(_PROBE_DESCRIBED)
        if checked[0] != 1 or (turn.usable and checked[1]):
            reason = UNUSABLE.get(checked[1], "is no longer on the page")
            result.tier_reason = (
                f"{_after(turn.prefix)}miss: {tier2}; llm chose {resolve.summary(chosen)}, "
                f"which {reason}"
            )
            raise ActionFailed(
                f"target_{checked[1]}" if checked[1] else "target_not_found",
                f"action {result.number} ({result.tool}): the model chose an element that "
                f"{reason} on {address_of(page.url)}; nothing was done",
            )
        result.resolved = f"model: {resolve.summary(chosen)}"
        result.repair = {"before": "", "after": resolve.summary(chosen), "score": None}
        if self.capture is not None:
            result.repair["screenshot"] = f"repair-{self.phase}-action-{result.number}"
            self.capture(page, result.repair["screenshot"])
        reason = f"{turn.prefix}llm (tier 2: {tier2})"
        self._repaired(result, turn.action, checked[3], reason, turn.recalled)
        self._resolved(result, 3, reason, turn.recalled, checked[3], turn.started)
        return found, checked[2]

    def _recall(self, page, action: dict, result: ActionResult):
        """The start of every resolution: when it started, its timings (kept on ``result``),
        the page's snapshot and the step's nearest state; what is learnt is kept for after."""
        started = time.perf_counter()
        step = step_key(self.phase, result.number, action)
        result.resolve_parts = timings = {}
        snapshot = recalled = None
        if self.memory is not None:
            guess = _GUESSES.get(self._guess_key(step), "")
            snapshot = self.memory.snapshot(page, timings, guess)
        if snapshot is not None:
            clock = _Clock(timings)
            recalled = self.memory.recall(self.phase, step, snapshot)
            clock.lap("search")
        self._learnt = _Learnt(step, snapshot)
        return started, timings, snapshot, recalled

    def _validate(self, page, remembered: dict, usable: bool, snapshot: Snapshot):
        """Why the remembered element does not hold here ('' if it does), its locator, and
        whether clicking it loads a page. Checked with the page's read when that guessed it."""
        from playwright.sync_api import Error as PlaywrightError

        if not remembered.get("css"):
            return "no_element", None, False
        try:
            if snapshot.guessed is not None and snapshot.guess == remembered["css"]:
                count, why, navigates, kind, name = snapshot.guessed
            else:
                count, why, navigates, kind, name = page.evaluate(_VALIDATE, remembered["css"])
        except PlaywrightError:  # a selector the page's engine no longer parses
            return "selector", None, False
        if count != 1:
            return ("missing" if count == 0 else "not_unique"), None, False
        if usable and why:
            return why, None, False
        if kind != remembered.get("kind"):
            return "role", None, False
        if _name(self.memory.mask(name)) != _name(remembered.get("name", "")):
            return "name", None, False
        return "", page.locator(remembered["css"]), navigates

    def _repaired(self, result, action, element: dict, reason: str, recalled) -> None:
        result.tier_reason = reason
        self._learnt.remember = {
            "tool": action["tool"],
            "target": action["target"],
            "element": {key: element.get(key, "") for key in resolve.FINGERPRINT_KEYS},
        }
        self._learnt.repaired = reason.startswith("validation_failed")

    def _guess_key(self, step: str) -> tuple:
        scope = self.memory.scope.for_phase(self.phase)
        return tuple(part.pk if part else None for part in (scope.workflow, scope.node,
                     scope.endpoint)) + (step,)  # fmt: skip

    def _resolved(self, result, tier, reason, recalled, element, started) -> None:
        if element and element.get("css") and self._learnt is not None:
            _GUESSES[self._guess_key(self._learnt.step)] = element["css"]
            _GUESSES.move_to_end(self._guess_key(self._learnt.step))
            while len(_GUESSES) > MAX_GUESSES:
                _GUESSES.popitem(last=False)
        result.tier, result.tier_reason = tier, reason
        result.state = recalled.state_id if recalled else None
        result.similarity = round(recalled.similarity, 4) if recalled else None
        result.resolve_ms = round((time.perf_counter() - started) * 1000, 2)
        if tier == 1:
            result.resolved = f"memory: {resolve.summary(element)}"

    def _refused(
        self, result, page, target, prefix, count, why, reason, verdict=None, recalled=None
    ):
        """The failure of an action whose target no tier found."""
        figures = f" ({verdict.figures})" if verdict and verdict.best else ""
        result.tier, result.tier_reason = None, f"{_after(prefix)}miss: {reason}{figures}"
        result.state = recalled.state_id if recalled else None
        result.similarity = round(recalled.similarity, 4) if recalled else None
        if verdict and verdict.runner_up and reason.startswith("tie"):
            kind = "target_ambiguous"
        elif why:
            kind = f"target_{why}"
        elif count > 1:
            kind = "target_ambiguous"
        else:
            kind = "target_not_found"
        return ActionFailed(
            kind,
            f"action {result.number} ({result.tool}): {describe(target)} was not found on "
            f"{address_of(page.url)} ({result.tier_reason}); nothing was done",
        )

    # -- extracted values ---------------------------------------------------------------------

    def labels(self, page, action: dict, result: ActionResult) -> dict[str, str]:
        """For each labelled field of an extract, the label the page shows its value by:
        the remembered one (tier 1), the described one, or a repaired one (tier 2)."""
        wanted = {name: spec["label"] for name, spec in action["fields"].items() if "label" in spec}
        if not wanted:
            return {}
        started, timings, snapshot, recalled = self._recall(page, action, result)
        prefix = "miss; "
        if _same_page(recalled):
            self._learnt.state_id = recalled.state_id
            stored = recalled.action.get("labels") or {}
            if set(stored) == set(wanted):
                clock = _Clock(timings)
                counts = values_beside(page, list(set(stored.values())))
                clock.lap("check")
                if all(counts[label][0] == 1 for label in stored.values()):
                    self._resolved(result, 1, "hit", recalled, None, started)
                    result.resolved = "memory: " + ", ".join(
                        f"{k} by {v!r}" for k, v in stored.items()
                    )
                    return stored
            prefix = "validation_failed:labels; "
        gated = _recognised(snapshot, recalled)
        remembered = (recalled.action.get("labels") if gated else None) or {}
        counts = values_beside(page, list(set(wanted.values())))
        found, repairs, page_labels = {}, [], None
        for name, label in wanted.items():
            if counts[label][0] == 1:
                found[name] = label
                continue
            if not gated:
                continue  # left to the executor, which names what it did not find
            if page_labels is None:
                page_labels = page.evaluate(_VALUE_LABELS)
            verdict = resolve.choose(
                resolve.score_candidates(
                    tool="extract",
                    target={"label": label},
                    remembered={"label": remembered[name]} if remembered.get(name) else None,
                    candidates=[{"kind": "text", "label": text} for text in page_labels],
                )
            )
            if verdict.chosen is None:
                result.tier_reason = f"{_after(prefix)}miss: {label!r}: {verdict.reason}"
                return {**wanted, **found}
            found[name] = verdict.chosen.candidate["label"]
            repairs.append(f"{name}={found[name]!r} {verdict.figures}")
        if len(found) < len(wanted):
            missing = ", ".join(repr(wanted[name]) for name in wanted if name not in found)
            result.tier_reason = f"{_after(prefix)}miss: {missing}: {_no_gate(snapshot, recalled)}"
            result.state = recalled.state_id if recalled else None
            result.similarity = round(recalled.similarity, 4) if recalled else None
            return {**wanted, **found}
        word = "repaired" if repairs or prefix != "miss; " else "matched"
        reason = f"{prefix}{word}" + (f" {'; '.join(repairs)}" if repairs else " score=1.00")
        self._learnt.remember = {"tool": "extract", "fields": action["fields"], "labels": found}
        self._learnt.repaired = prefix != "miss; "
        self._resolved(result, 2, reason, recalled, None, started)
        result.resolved = ", ".join(f"{k} by {v!r}" for k, v in found.items())
        return found

    # -- after the action ---------------------------------------------------------------------

    def settle(self, result: ActionResult) -> None:
        """Write back what the action showed: a remembered state's outcome, or the element
        (labels) that tier 2 or 3 found, once the action worked with it."""
        if result.target:
            self.history.append(
                f"{result.tool} {result.target}: {'done' if result.success else 'failed'}"
            )
        learnt, self._learnt = self._learnt, None
        if learnt is None or self.memory is None:
            return
        if learnt.remember is not None:
            if result.success and learnt.snapshot is not None:
                self.memory.remember(
                    self.phase, learnt.step, learnt.snapshot, learnt.remember, learnt.repaired
                )
            elif learnt.state_id is not None and not result.success:
                self.memory.outcome(learnt.state_id, False)
        elif learnt.state_id is not None:
            self.memory.outcome(learnt.state_id, result.success)


def _same_page(recalled) -> bool:
    return recalled is not None and recalled.similarity >= settings.MEMORY_SAME_PAGE_THRESHOLD


def _recognised(snapshot: Snapshot | None, recalled) -> bool:
    """Whether the page is recognisably the remembered one (the repair gate): alike in
    structure (the embeddings) or in what it says (its words), at GATE or more. A redesign
    changes the markup and keeps most of the words; another page of the portal keeps the
    markup's frame and changes the words."""
    if snapshot is None or recalled is None:
        return False
    if recalled.similarity >= GATE:
        return True
    return resolve.page_likeness(snapshot.words, recalled.words) >= GATE


def _model_candidate(key: str, element: dict) -> llm.Candidate:
    return llm.Candidate(
        key=key,
        role=element.get("kind", ""),
        name=element.get("name", ""),
        label=element.get("label", ""),
        placeholder=element.get("placeholder", ""),
        nearby=element.get("nearby", ""),
        tag=element.get("tag", ""),
    )


def _exchange(answer) -> dict:
    """A model's part, for the trace's llm_* columns (masked by webactions/llm.py)."""
    return {
        "prompt": answer.prompt,
        "response": answer.response,
        "model": answer.model,
        "tokens": answer.tokens,
    }


def _after(prefix: str) -> str:
    """The reason's start for a failure: what tier 1 found, if anything."""
    return "" if prefix == "miss; " else prefix


def _no_gate(snapshot: Snapshot | None, recalled) -> str:
    if recalled is None:
        return "nothing remembered of this step"
    words = resolve.page_likeness(snapshot.words, recalled.words) if snapshot else 0.0
    return (
        f"the page is not the remembered one (similarity {recalled.similarity:.2f}, words "
        f"{words:.2f} < {GATE})"
    )


def _name(text: str) -> str:
    return " ".join((text or "").split()).casefold()
