"""The one JSON parser of the API: every request body, and JSON that arrives as text in a form
field or a query parameter, is read by ``json_loads`` and checked by ``json_problem``.

What JSON text may carry but we refuse with a 400 (each would otherwise end in a 500):

- U+0000 or a lone surrogate (\ud800-\udfff) in a string or a key: PostgreSQL refuses the
  first in text and in jsonb and cannot encode the second as UTF-8, so the request would fail
  only at the INSERT.
- NaN and Infinity, which Python's json module reads but JSON and jsonb do not have.
- Deep nesting: Python's json module recurses once per level, and so do our serializers and
  the renderer; a body nested ~1,000 deep ends in RecursionError. 64 levels is far more than
  any of our documents needs (a workflow graph is 5 deep) and keeps every walk cheap.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import (  # type: ignore[attr-defined]
    BaseParser,
    get_encoding,  # DRF's, which its stubs leave out
)
from rest_framework.renderers import JSONRenderer

MAX_JSON_DEPTH = 64
JSON_TOO_DEEP = f"JSON may be nested at most {MAX_JSON_DEPTH} levels deep."
JSON_HAS_NUL = "JSON may not contain the NUL character (\\u0000) in a string or a key."
JSON_HAS_SURROGATE = "JSON may not contain a lone surrogate (\\ud800-\\udfff) in a string or a key."
JSON_MALFORMED = "JSON parse error - {reason}"

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


class JSONInputError(ValueError):
    """JSON text that is malformed or that we refuse; the message is the client's."""


class JSONMalformed(JSONInputError):
    """Text that is not JSON at all."""


def json_problem(value: Any) -> str | None:
    """Why parsed JSON cannot be accepted (too deep, unstorable text somewhere), or None.

    A walk with its own stack, not recursion: the point is to survive what recursion cannot.
    """
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            problem = _text_problem(item)
            if problem:
                return problem
            continue
        children: Sequence[Any]
        if isinstance(item, dict):
            children = [*item, *item.values()]  # keys are text as much as values are
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        if depth + 1 > MAX_JSON_DEPTH:
            return JSON_TOO_DEEP
        stack.extend((child, depth + 1) for child in children)
    return None


def _text_problem(text: str) -> str | None:
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    return JSON_HAS_NUL if found.group() == "\x00" else JSON_HAS_SURROGATE


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def json_loads(text: str | bytes) -> Any:
    """Parsed JSON, or JSONInputError saying what is wrong with it."""
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        # The C scanner stops at the interpreter's recursion limit (~1,000 levels) before the
        # stack is at risk; anything that deep is far beyond the limit we check below.
        raise JSONInputError(JSON_TOO_DEEP) from None
    except ValueError as exc:
        raise JSONMalformed(JSON_MALFORMED.format(reason=exc)) from None
    problem = json_problem(value)
    if problem:
        raise JSONInputError(problem)
    return value


class CheckedJSONParser(BaseParser):
    """DRF's JSONParser, reading through json_loads (REST_FRAMEWORK's only JSON parser)."""

    media_type = "application/json"
    renderer_class = JSONRenderer

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = get_encoding(parser_context or {})
        try:
            return json_loads(stream.read().decode(encoding))
        except UnicodeDecodeError as exc:
            raise ParseError(JSON_MALFORMED.format(reason=exc)) from None
        except JSONInputError as exc:
            raise ParseError(str(exc)) from None
