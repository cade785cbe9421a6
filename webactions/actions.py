"""The action language: what a web step does, as JSON, checked before it ever runs.

An action list is a list of objects, each with a ``tool``:

    {"tool": "goto", "url": "/sandbox/v1/"}
    {"tool": "fill", "target": {"label": "Member ID"}, "value": "{{ input.member_id }}"}
    {"tool": "totp", "target": {"label": "Verification code"}}
    {"tool": "click", "target": {"role": "button", "name": "Search"}}
    {"tool": "extract", "fields": {"plan": {"label": "Plan"}, "active": {"label": "Status"}}}

A **target** is described the way a person would point at it: ``label`` (the text of its
label), ``role`` with ``name`` (its ARIA role and accessible name), ``text`` (its visible
text) or ``placeholder``; ``css`` is a hint that may come along, never the only description.
Values are templates over the run's context (``input``, ``nodes``) and, inside the executor
alone, the step's credential (``credential.username``, ``credential.password``,
``credential.token``, ``credential.extra.<name>``).
"""

from __future__ import annotations

from typing import Any

from workflows import public as engine

# tool -> (required keys, optional keys); every tool may also carry "timeout_ms".
TOOLS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "goto": (("url",), ()),
    "fill": (("target", "value"), ()),
    "select": (("target", "value"), ()),
    "check": (("target",), ("checked",)),
    "click": (("target",), ()),
    "press": (("key",), ("target",)),
    "wait_for": ((), ("target", "text")),
    "extract": (("fields",), ()),
    "assert_text": (("text",), ()),
    "totp": (("target",), ()),
    "screenshot": ((), ("name",)),
}
DESCRIPTIONS = ("label", "role", "name", "text", "placeholder")
TARGET_KEYS = (*DESCRIPTIONS, "css", "exact")
ROLES = (
    "button", "link", "textbox", "checkbox", "radio", "combobox", "listbox", "option", "tab",
    "cell", "row", "columnheader", "rowheader", "heading", "searchbox", "spinbutton", "menuitem",
)  # fmt: skip
CREDENTIAL_FIELDS = ("username", "password", "token", "client_id", "extra")
MAX_ACTIONS = 200
MAX_TIMEOUT_MS = 120_000
MAX_TEXT_CHARS = 2_000


def describe(target: dict) -> str:
    """A target as people read it: 'the textbox "Member ID"', 'label "Plan"'."""
    if target.get("role"):
        name = f' "{target["name"]}"' if target.get("name") else ""
        return f"the {target['role']}{name}"
    for key in ("label", "text", "placeholder"):
        if target.get(key):
            return f'{key} "{target[key]}"'
    return "an undescribed target"


def target_problems(target: Any, where: str) -> list[str]:
    if not isinstance(target, dict):
        return [f"{where}: a target is an object ({', '.join(DESCRIPTIONS)}, css)"]
    problems = [f"{where}: unknown key {key!r}" for key in target if key not in TARGET_KEYS]
    described = [key for key in ("label", "role", "text", "placeholder") if target.get(key)]
    if not described:
        problems.append(
            f"{where}: describe the target by label, role (with name), text or placeholder; "
            "css is only a hint"
        )
    if target.get("name") and not target.get("role"):
        problems.append(f"{where}: name is the accessible name of a role; give the role")
    if target.get("role") and target["role"] not in ROLES:
        problems.append(f"{where}: unknown role {target['role']!r}")
    for key in (*DESCRIPTIONS, "css"):
        value = target.get(key)
        if value is not None and (not isinstance(value, str) or len(value) > MAX_TEXT_CHARS):
            problems.append(f"{where}: {key} must be a text of at most {MAX_TEXT_CHARS} characters")
    if "exact" in target and not isinstance(target["exact"], bool):
        problems.append(f"{where}: exact must be true or false")
    return problems


def _template_problems(value: Any, where: str) -> list[str]:
    problems = [f"{where}: {problem}" for problem in engine.template_problems(value)]
    for reference in engine.references(value, roots=("credential",)):
        if len(reference.path) < 2 or reference.path[1] not in CREDENTIAL_FIELDS:
            fields = ", ".join(f"credential.{name}" for name in CREDENTIAL_FIELDS)
            problems.append(f"{where}: {reference} is not a credential field ({fields})")
    return problems


def action_problems(actions: Any) -> list[str]:
    """Every problem of an action list, each naming the action (1-based) and the key."""
    if not isinstance(actions, list) or not actions:
        return ["actions must be a non-empty list"]
    if len(actions) > MAX_ACTIONS:
        return [f"at most {MAX_ACTIONS} actions"]
    problems: list[str] = []
    for number, action in enumerate(actions, start=1):
        where = f"action {number}"
        if not isinstance(action, dict) or action.get("tool") not in TOOLS:
            tool = action.get("tool") if isinstance(action, dict) else None
            problems.append(f"{where}: unknown tool {tool!r} (tools: {', '.join(TOOLS)})")
            continue
        tool = action["tool"]
        where = f"action {number} ({tool})"
        required, optional = TOOLS[tool]
        problems += [f"{where}: {key} is required" for key in required if key not in action]
        allowed = {"tool", "timeout_ms", *required, *optional}
        problems += [f"{where}: unknown key {key!r}" for key in action if key not in allowed]
        if "target" in action:
            problems += target_problems(action["target"], where)
        for key in ("url", "value", "text", "key", "name"):
            if key in action:
                if not isinstance(action[key], str) or len(action[key]) > MAX_TEXT_CHARS:
                    problems.append(f"{where}: {key} must be a text")
                else:
                    problems += _template_problems(action[key], f"{where}: {key}")
        if tool == "wait_for" and not (action.get("target") or action.get("text")):
            problems.append(f"{where}: wait for a target or a text")
        if tool == "extract":
            problems += _field_problems(action.get("fields"), where)
        timeout = action.get("timeout_ms")
        if timeout is not None and (
            not isinstance(timeout, int)
            or isinstance(timeout, bool)
            or not 100 <= timeout <= MAX_TIMEOUT_MS
        ):
            problems.append(
                f"{where}: timeout_ms must be a whole number from 100 to {MAX_TIMEOUT_MS}"
            )
    return problems


def _field_problems(fields: Any, where: str) -> list[str]:
    if not isinstance(fields, dict) or not fields:
        return [
            f'{where}: fields must map output names to labels ({{"plan": {{"label": "Plan"}}}})'
        ]
    problems = []
    for name, spec in fields.items():
        if not name.isidentifier():
            problems.append(f"{where}: output name {name!r} must be an identifier")
        if not isinstance(spec, dict) or set(spec) - {"label", "table"} or len(spec) != 1:
            problems.append(
                f'{where}: field {name!r} is {{"label": "<the value\'s label>"}} or '
                f'{{"table": "<the table\'s caption, heading or id>"}}'
            )
        elif not isinstance(next(iter(spec.values())), str):
            problems.append(f"{where}: field {name!r} must name its label or table in text")
    return problems


def references(actions: list) -> set[engine.Reference]:
    """The run-context paths the action list's templates read, for publishing to check
    (credential.* is the executor's, never the run context's, and is not among them)."""
    found = set()
    for action in actions if isinstance(actions, list) else ():
        if isinstance(action, dict):
            for key in ("url", "value", "text", "key", "name"):
                if isinstance(action.get(key), str):
                    found |= engine.references(action[key])
    return found
