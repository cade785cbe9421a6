"""Writes of the memory: storing pages with the same-page rule, outcomes, retirement, re-embedding.

Storing (``micro_state_store``), the V8 rule: the page is masked, embedded and compared with the
organization's live states of the same scope (workflow, node, step, endpoint, embedder).
- At or above the same-page threshold (0.80) it is the same page: the stored state is reused,
  unless the caller had to repair the action, in which case the old state retires, aliased to
  a new one holding the repaired action.
- Below it, a new state is stored.
Two stores of one new page at the same moment must not both insert it: stores of one scope are
serialised by a transaction-level advisory lock on the scope.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Value
from django.db.models.functions import Greatest, Least

from memory import selectors
from memory.embeddings import DIMENSION, Embedder, EmbeddingError, embedder
from memory.models import MicroState
from memory.selectors import Scope, nearest_in_scope
from rcm import clock, phi
from rcm.context import require_org_id
from rcm.errors import ApplicationError, Conflict

INSERTED, REUSED, REPLACED = "inserted", "reused", "replaced"
EMPTY_DOM = "The DOM snapshot is empty."
DOM_TOO_LARGE = "The DOM snapshot is {size} bytes; the largest accepted is {limit} bytes."
BAD_DIMENSION = "An embedding has exactly {dimension} numbers; this one has {count}."
NOT_FINITE = "An embedding's numbers must be finite; item {index} is {value}."
ZERO_VECTOR = "An embedding cannot be all zeros: it has no direction to compare."
ALIAS_SELF = "A state cannot be aliased to itself."
ALIAS_CYCLE = "State {target} is (through its aliases) aliased to this one."


@dataclass(frozen=True)
class Stored:
    state: MicroState
    decision: str  # inserted | reused | replaced
    similarity: float | None  # to the nearest state of the scope, if there was one


# -- input checks shared by the API and the services --------------------------------------------


def dom_check(dom_snapshot: str | None) -> None:
    """An empty DOM is a 400; one larger than MEMORY_MAX_DOM_BYTES a 413."""
    if not dom_snapshot or not dom_snapshot.strip():
        raise ApplicationError("empty_dom", EMPTY_DOM, {"dom_snapshot": [EMPTY_DOM]})
    size = len(dom_snapshot.encode("utf-8"))
    if size > settings.MEMORY_MAX_DOM_BYTES:
        message = DOM_TOO_LARGE.format(size=size, limit=settings.MEMORY_MAX_DOM_BYTES)
        raise ApplicationError("dom_too_large", message, {"dom_snapshot": [message]}, status=413)


def embedding_problem(values) -> str:
    """Why these numbers are not an embedding ('' if they are): 768 finite, not all zero."""
    if not isinstance(values, list | tuple) or len(values) != DIMENSION:
        count = len(values) if isinstance(values, list | tuple) else 0
        return BAD_DIMENSION.format(dimension=DIMENSION, count=count)
    for index, value in enumerate(values):
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            return NOT_FINITE.format(index=index, value=value)
    if not any(values):
        return ZERO_VECTOR
    return ""


def embedding_normalised(values) -> np.ndarray:
    """The caller's embedding as float32, L2-normalised like every embedder's output."""
    problem = embedding_problem(list(values))
    if problem:
        raise ApplicationError("invalid_embedding", problem, {"text_emb": [problem]})
    # In float64, scaled by the largest magnitude first: finite numbers past float32's range
    # (3.4e38) became inf, and tiny ones 0, so the norm was inf or 0 and the vector NaN, which
    # pgvector refuses (a 500). Scaled, the norm is between 1 and sqrt(768).
    vector = np.asarray(values, dtype=np.float64)
    vector = vector / np.abs(vector).max()
    return (vector / np.linalg.norm(vector)).astype(np.float32)


# A path segment that names one record rather than a page: digits, or a token mixing digits
# into letters (a member ID, a claim number, a UUID).
_RECORD_SEGMENT = re.compile(r"\d+|(?=[^/]*\d)[A-Za-z0-9._~%-]{6,}")


def url_pattern_of(url: str) -> str:
    """The page a URL shows, without the record it shows it for: query and fragment dropped
    (they carry search terms, often patient data), record segments of the path as {id}."""
    parts = urlsplit(url.strip())
    path = "/".join(
        "{id}" if _RECORD_SEGMENT.fullmatch(segment) else segment
        for segment in parts.path.split("/")
    )
    return f"{parts.scheme}://{parts.netloc}{path}" if parts.netloc else path


def page_embed(*, html: str, url: str = "", using: Embedder | None = None):
    """(vector, embedder's model id) of a masked page, failures as the API's errors."""
    in_use = using or embedder()
    return _embedded(lambda: in_use.embed_page(html, url)), in_use.model_id


def text_embed(*, text: str, using: Embedder | None = None):
    """(vector, embedder's model id) of a text, masked first: an http embedder sends it out."""
    in_use = using or embedder()
    masked = phi.mask(text)
    return _embedded(lambda: in_use.embed_text(masked)), in_use.model_id


def search_input_embed(
    *,
    text_emb: Iterable[float] | None = None,
    text: str | None = None,
    dom_snapshot: str | None = None,
    url: str = "",
):
    """(vector, embedder's model id) of what a search looks for: the caller's own embedding,
    else a text, else a page (``dom_snapshot`` at ``url``)."""
    if text_emb is not None:
        return embedding_normalised(text_emb), selectors.CLIENT_EMBEDDER
    if text is not None:
        return text_embed(text=text)
    dom_check(dom_snapshot)
    dom_snapshot = cast(str, dom_snapshot)  # dom_check refused None
    # Masked as a stored page is, so that both embed alike (and nothing unmasked reaches an
    # http embedder).
    return page_embed(html=phi.mask(dom_snapshot), url=phi.mask(url_pattern_of(url)))


def _embedded(embed: Callable[[], np.ndarray]) -> np.ndarray:
    try:
        return embed()
    except ValueError as exc:  # nothing on the page or in the text to embed
        raise ApplicationError("nothing_to_embed", str(exc)) from exc
    except EmbeddingError as exc:  # the configured service failed: not the caller's fault
        raise ApplicationError("embedder_unavailable", str(exc), status=503) from exc


# -- storing ----------------------------------------------------------------------------------


def _scope_lock(scope: Scope, org_id) -> None:
    key = (
        f"micro_state:{org_id}:{scope.workflow_id}:{scope.node_id}:{scope.endpoint_id}:"
        f"{scope.step_key}"
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [key])


@transaction.atomic
def micro_state_store(
    *,
    dom_snapshot: str,
    action_json: dict,
    url: str = "",
    url_pattern: str = "",
    workflow=None,
    node=None,
    endpoint=None,
    step_key: str = "",
    semantic_spec: dict | None = None,
    label: str = "",
    category: str = "",
    required: bool = False,
    mini_score: float = 1.0,
    text_emb: Iterable[float] | None = None,
    declared_phi: Mapping[str, str] | Iterable[str] = (),
    repaired: bool = False,
    using: Embedder | None = None,
) -> Stored:
    """Store a page the agent met and the action that worked there, by the same-page rule.

    The DOM, the action, the spec, the label and the URL are masked (rcm.phi) before anything
    is embedded or written;
    ``declared_phi`` adds the literal values the caller knows are patient data (a batch row's
    inputs). ``text_emb`` is a caller's own embedding (768 finite numbers), else the
    configured embedder embeds the masked page.
    """
    dom_check(dom_snapshot)
    org_id = require_org_id()
    url_pattern = phi.mask(url_pattern or url_pattern_of(url), declared=declared_phi)
    label = phi.mask(label, declared=declared_phi)
    masked_dom = phi.mask(dom_snapshot, declared=declared_phi)
    masked_action = phi.mask_json(action_json, declared=declared_phi)
    masked_spec = phi.mask_json(semantic_spec or {}, declared=declared_phi)
    embedder_in_use = using or embedder()
    if text_emb is not None:
        vector = embedding_normalised(text_emb)
        model_id, native_dimension = selectors.CLIENT_EMBEDDER, DIMENSION
    else:
        vector, _ = page_embed(html=masked_dom, url=url_pattern, using=embedder_in_use)
        model_id, native_dimension = embedder_in_use.model_id, embedder_in_use.native_dimension
    scope = Scope(
        workflow_id=workflow.pk if workflow else None,
        node_id=node.pk if node else None,
        endpoint_id=endpoint.pk if endpoint else None,
        embedder=model_id,
        step_key=step_key,
    )
    _scope_lock(scope, org_id)
    nearest = nearest_in_scope(scope=scope, vector=vector)
    now = clock.now()
    same_page = nearest is not None and nearest.similarity >= settings.MEMORY_SAME_PAGE_THRESHOLD
    if same_page and not repaired:
        MicroState.objects.filter(pk=nearest.state.pk).update(last_hit_at=now, updated_at=now)
        nearest.state.last_hit_at = now
        return Stored(nearest.state, REUSED, nearest.similarity)
    state = MicroState.objects.create(
        org_id=org_id,
        workflow=workflow,
        node=node,
        endpoint=endpoint,
        step_key=step_key,
        url_pattern=url_pattern,
        dom_snapshot=masked_dom,
        action_json=masked_action,
        semantic_spec=masked_spec,
        label=label,
        category=category,
        required=required,
        mini_score=mini_score,
        text_emb=vector,
        embedder=model_id,
        embedder_dimension=native_dimension,
        last_hit_at=now,
    )
    if same_page:
        _retire(state_id=nearest.state.pk, aliased_to_id=state.pk, now=now)
        return Stored(_refetch(state), REPLACED, nearest.similarity)
    return Stored(_refetch(state), INSERTED, nearest.similarity if nearest else None)


def _refetch(state: MicroState) -> MicroState:
    # is_dynamic is computed by the database (a generated column).
    return MicroState.objects.get(pk=state.pk)


def _retire(*, state_id: int, aliased_to_id: int | None, now) -> None:
    MicroState.objects.filter(pk=state_id).update(
        is_retired=True, aliased_to_id=aliased_to_id, updated_at=now
    )


# -- outcomes ---------------------------------------------------------------------------------


@transaction.atomic
def micro_state_outcome_record(*, state: MicroState, success: bool) -> MicroState:
    """Count an outcome of the state's action and move its success average (EMA, weight
    MEMORY_EMA_ALPHA on the newest); a state whose average has fallen below
    MEMORY_RETIRE_BELOW after at least MEMORY_RETIRE_MIN_OUTCOMES outcomes retires itself.

    One UPDATE, computed by the database from the row as it is: concurrent outcomes of one
    state all count, none is lost to a read-modify-write race.
    """
    alpha = settings.MEMORY_EMA_ALPHA
    x = 1.0 if success else 0.0
    now = clock.now()
    updates = {
        # Clamped: float rounding must never break the 0..1 check.
        "success_ema": Least(
            Value(1.0), Greatest(Value(0.0), F("success_ema") * (1 - alpha) + alpha * x)
        ),
        "updated_at": now,
        "last_hit_at": now,
    }
    if success:
        updates["success_count"] = F("success_count") + 1
    else:
        updates["failure_count"] = F("failure_count") + 1
    MicroState.objects.filter(pk=state.pk).update(**updates)
    MicroState.objects.filter(
        pk=state.pk,
        is_retired=False,
        success_ema__lt=settings.MEMORY_RETIRE_BELOW,
    ).annotate(outcomes=F("success_count") + F("failure_count")).filter(
        outcomes__gte=settings.MEMORY_RETIRE_MIN_OUTCOMES
    ).update(is_retired=True, updated_at=now)
    return MicroState.objects.get(pk=state.pk)


# -- retirement and aliases -------------------------------------------------------------------


@transaction.atomic
def micro_state_retire(*, state: MicroState, aliased_to: MicroState | None = None) -> MicroState:
    """Search stops finding the state; ``aliased_to`` names the state that replaces it."""
    if aliased_to is not None:
        _alias_check(state=state, target=aliased_to)
    _retire(state_id=state.pk, aliased_to_id=aliased_to.pk if aliased_to else None, now=clock.now())
    return MicroState.objects.get(pk=state.pk)


@transaction.atomic
def micro_state_unretire(*, state: MicroState) -> MicroState:
    """Search finds the state again; its alias is dropped and its average starts afresh (its
    old outcomes are what retired it)."""
    MicroState.objects.filter(pk=state.pk).update(
        is_retired=False,
        aliased_to=None,
        success_ema=1.0,
        success_count=0,
        failure_count=0,
        updated_at=clock.now(),
    )
    return MicroState.objects.get(pk=state.pk)


def _alias_check(*, state: MicroState, target: MicroState) -> None:
    if target.pk == state.pk:
        raise Conflict("alias_self", ALIAS_SELF, {"aliased_to": [ALIAS_SELF]})
    # Follow the target's aliases as stored now: none may lead back to the state.
    seen = {state.pk}
    hop: int | None = target.pk
    while hop is not None:
        if hop in seen:
            message = ALIAS_CYCLE.format(target=target.pk)
            raise Conflict("alias_cycle", message, {"aliased_to": [message]})
        seen.add(hop)
        hop = MicroState.objects.filter(pk=hop).values_list("aliased_to_id", flat=True).first()


# -- re-embedding -----------------------------------------------------------------------------

REEMBED_BATCH = 200


def micro_state_reembed(
    *,
    using: Embedder | None = None,
    only_stale: bool = True,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Embed the organization's states again with ``using`` (the configured embedder), a
    batch per transaction, in id order; ``only_stale`` skips states already made by it.
    Returns how many were re-embedded. Safe to interrupt and run again."""
    embedder_in_use = using or embedder()
    states = selectors.micro_state_reembed_list(
        embedder=embedder_in_use.model_id, only_stale=only_stale
    )
    done, after = 0, 0
    while True:
        batch = list(
            states.filter(id__gt=after).values_list("id", "dom_snapshot", "url_pattern")[
                :REEMBED_BATCH
            ]
        )
        if not batch:
            return done
        vectors = embedder_in_use.embed_pages([(dom, url) for _, dom, url in batch])
        # One UPDATE a batch, not one a state.
        MicroState.objects.bulk_update(
            [
                MicroState(
                    pk=state_id,
                    text_emb=vector,
                    embedder=embedder_in_use.model_id,
                    embedder_dimension=embedder_in_use.native_dimension,
                )
                for (state_id, _, _), vector in zip(batch, vectors, strict=True)
            ],
            ["text_emb", "embedder", "embedder_dimension"],
        )
        done += len(batch)
        after = batch[-1][0]
        if progress is not None:
            progress(len(batch))
