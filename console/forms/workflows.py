"""The workflow editor's forms: what an operator types, parsed and checked before the authoring
services see it, and the services' refusals put back next to the field they concern.

Every form that changes the draft carries the draft ``version`` the page was read at: the
services refuse a stale one (optimistic locking), exactly as they refuse the API's.
"""

from __future__ import annotations

import json

from django import forms

from rcm.api.parsers import JSONInputError, JSONMalformed, json_loads
from rcm.errors import ApplicationError
from workflows import public as engine
from workflows.models import NodeType, TriggerRule, WorkflowNode
from workflows.public import Node
from workflows.services import authoring
from workflows.validation.graph import MAX_LABEL_LENGTH, Code, node_config_problems

STALE = (
    "This workflow was changed by someone else since you opened it — reload the page to see "
    "their changes, then make yours again."
)
CONFIG_MAX_CHARS = 100_000
NOT_JSON = "This is not valid JSON: {problem} (line {line}, column {column})."
NOT_AN_OBJECT = 'The config is a JSON object, in braces: {"name": value, ...}.'
CONFIG_PROBLEM = "For {subject}: {problem}."
MAIN_FIELDS = ("key", "node_type", "kind", "config", "trigger_rule", "timeout_s")
RETRY_FIELDS = (
    "maximum_attempts",
    "initial_interval_s",
    "backoff_coefficient",
    "maximum_interval_s",
    "jitter",
    "non_retryable_error_kinds",
)
# What each rule means, as the engine applies it (docs/workflows.md, "Joins and trigger rules").
TRIGGER_RULES = [
    (TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS, "one way in fired, none failed (the default)"),
    (TriggerRule.ALL_SUCCESS, "every way in fired"),
    (TriggerRule.ALL_DONE, "every way in decided, unless all are dead paths"),
]
# A refusal of the graph services names a problem by code: the field it is about.
FIELD_OF_CODE = {
    Code.INVALID_KEY: "key",
    Code.DUPLICATE_KEY: "key",
    Code.UNKNOWN_NODE_TYPE: "node_type",
    Code.UNKNOWN_TRIGGER_RULE: "trigger_rule",
    Code.INVALID_TIMEOUT: "timeout_s",
    Code.UNKNOWN_KIND: "kind",
    Code.KIND_NOT_ALLOWED: "kind",
    Code.CONFIG_NOT_OBJECT: "config",
    Code.SELF_LOOP: "target",
    Code.INVALID_LABEL: "label",
    Code.DUPLICATE_TRANSITION: "label",
}


class DraftForm(forms.Form):
    """A change to the draft, based on the version the page showed."""

    version = forms.IntegerField(widget=forms.HiddenInput, min_value=1)

    stale = False  # set when the services refused the version: the page says it on top
    status = 400  # the page's status when the form comes back refused

    def refused(self, error: ApplicationError) -> None:
        """Put a refusal of the authoring services on the form: each graph problem next to
        its field, anything else (an archived workflow) above the fields."""
        self.status = error.status
        if error.code == "stale_version":
            self.stale = True
            return
        problems = error.details.get("problems")
        if not problems:
            self.add_error(None, error.message)
            return
        for problem in problems:
            field = FIELD_OF_CODE.get(problem["code"])
            self.add_error(field if field in self.fields else None, problem["message"])


class NodeForm(DraftForm):
    """A node: its key, type, kind, config (JSON), retry policy and join rule."""

    key = forms.CharField(
        max_length=64, help_text="Letters, digits, _ or -; templates read it (nodes.<key>)."
    )
    node_type = forms.ChoiceField(choices=NodeType.choices, initial=NodeType.GENERAL)
    kind = forms.ChoiceField(
        required=False, help_text="What a general node works through; a decision uses decision."
    )
    config = forms.CharField(
        required=False,
        # What the API's request body limit lets a node's config be, and no more.
        max_length=CONFIG_MAX_CHARS,
        widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false", "class": "wf-json"}),
        help_text='JSON. An outcome: {"result": "success"} or {"result": "failure"}; an entry: {}.',
    )
    trigger_rule = forms.ChoiceField(
        choices=TRIGGER_RULES,
        initial=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS,
        help_text="When a node with several ways in (a join) runs.",
    )
    timeout_s = forms.IntegerField(
        required=False, label="Timeout (s)", help_text="Per attempt; empty: the default."
    )
    maximum_attempts = forms.IntegerField(required=False, label="Maximum attempts")
    initial_interval_s = forms.FloatField(required=False, label="First retry after (s)")
    backoff_coefficient = forms.FloatField(required=False, label="Backoff factor")
    maximum_interval_s = forms.FloatField(required=False, label="Longest wait (s)")
    jitter = forms.FloatField(required=False, label="Jitter (0-1)")
    non_retryable_error_kinds = forms.CharField(
        required=False,
        label="Never retry on",
        help_text="Error kinds, comma-separated (http_400, template_error, ...).",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The registry is filled as the apps load (webactions adds web): read it now.
        kinds = engine.kind_names()
        self.fields["kind"].choices = [("", "none")] + [(name, name) for name in kinds]

    def clean_config(self) -> dict:
        text = self.cleaned_data["config"].strip()
        if not text:
            return {}
        try:
            # The API's reader: besides malformed text it refuses what PostgreSQL would
            # (NaN, NUL, lone surrogates) and nesting too deep to walk.
            config = json_loads(text)
        except JSONMalformed as error:
            cause = error.__context__
            if isinstance(cause, json.JSONDecodeError):
                raise forms.ValidationError(
                    NOT_JSON.format(problem=cause.msg, line=cause.lineno, column=cause.colno)
                ) from error
            raise forms.ValidationError(str(error)) from error
        except JSONInputError as error:
            raise forms.ValidationError(str(error)) from error
        if not isinstance(config, dict):
            raise forms.ValidationError(NOT_AN_OBJECT)
        return config

    def clean_non_retryable_error_kinds(self) -> list[str] | None:
        names = [name.strip() for name in self.cleaned_data["non_retryable_error_kinds"].split(",")]
        return [name for name in names if name] or None

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        node = Node(
            key=data["key"],
            node_type=data["node_type"],
            kind=self._kind(data),
            config=data["config"],
            retry_policy=self.retry_policy(),
        )
        # What publishing would say of the config and retry policy on their own; a node
        # without a kind yet is a draft's right (validating lists it).
        for problem in node_config_problems(node):
            if problem.code == Code.INVALID_CONFIG:
                self.add_error("config", _config_problem(node, problem.message))
            elif problem.code == Code.INVALID_RETRY_POLICY:
                self._retry_error(problem.message)
        return data

    @staticmethod
    def _kind(data: dict) -> str:
        # As the service fills it in: a decision node without a kind decides.
        if data["node_type"] == NodeType.DECISION and not data["kind"]:
            return authoring.DECISION_KIND
        return data["kind"]

    def _retry_error(self, message: str) -> None:
        for name in RETRY_FIELDS:
            prefix = f"retry_policy.{name} "
            if message.startswith(prefix):
                text = message.removeprefix(prefix)
                self.add_error(name, f"{text[0].upper()}{text[1:]}.")
                return
        self.add_error(None, message)

    def main_fields(self) -> list:
        return [self[name] for name in MAIN_FIELDS]

    def retry_fields(self) -> list:
        return [self[name] for name in RETRY_FIELDS]

    @property
    def retry_given(self) -> bool:
        """Whether the retry fields hold anything (a value, or a reason they were refused):
        then the page shows them open."""
        return any(
            self[name].value() not in (None, "") or self[name].errors for name in RETRY_FIELDS
        )

    def retry_policy(self) -> dict:
        return {
            name: self.cleaned_data[name]
            for name in RETRY_FIELDS
            if self.cleaned_data.get(name) is not None
        }

    def service_fields(self) -> dict:
        """The keyword arguments of the authoring services for this node."""
        data = self.cleaned_data
        return {
            "version": data["version"],
            "key": data["key"],
            "node_type": data["node_type"],
            "kind": data["kind"],
            "config": data["config"],
            "retry_policy": self.retry_policy(),
            "trigger_rule": data["trigger_rule"],
            "timeout_s": data["timeout_s"],
        }


def _config_problem(node: Node, message: str) -> str:
    """A kind's complaint about a config, saying whose rules these are."""
    kinds_own = node.node_type in (NodeType.GENERAL, NodeType.DECISION)
    subject = f"kind {node.kind}" if kinds_own else f"an {node.node_type} node"
    return CONFIG_PROBLEM.format(subject=subject, problem=message.rstrip("."))


class NodeEditForm(NodeForm):
    node = forms.IntegerField(widget=forms.HiddenInput)

    @classmethod
    def for_node(cls, node: WorkflowNode, *, version: int) -> NodeEditForm:
        """The form filled in with ``node`` as it is."""
        policy = node.retry_policy if isinstance(node.retry_policy, dict) else {}
        initial = {
            "version": version,
            "node": node.pk,
            "key": node.key,
            "node_type": node.node_type,
            "kind": node.kind,
            "config": json.dumps(node.config, indent=2) if node.config else "",
            "trigger_rule": node.trigger_rule,
            "timeout_s": node.timeout_s,
            **{name: policy.get(name) for name in RETRY_FIELDS},
        }
        if isinstance(policy.get("non_retryable_error_kinds"), list):
            initial["non_retryable_error_kinds"] = ", ".join(policy["non_retryable_error_kinds"])
        return cls(initial=initial)


class EdgeForm(DraftForm):
    """A transition between two nodes of the draft, named by their keys."""

    source = forms.ChoiceField(label="From")
    label = forms.CharField(
        max_length=MAX_LABEL_LENGTH,
        initial=engine.SUCCESS,
        help_text="The label the source ends with that takes this way (success, not_found, …).",
    )
    target = forms.ChoiceField(label="To")

    def __init__(self, *args, keys: list[str], **kwargs):
        kwargs.setdefault("auto_id", "edge_%s")  # ids apart from the node form's on the page
        super().__init__(*args, **kwargs)
        choices = [(key, key) for key in keys]
        self.fields["source"].choices = self.fields["target"].choices = choices


class RemoveForm(DraftForm):
    """The row to remove (a node or a transition, by id)."""

    row = forms.IntegerField(widget=forms.HiddenInput)


class PublishForm(DraftForm):
    comment = forms.CharField(
        required=False, max_length=500, help_text="What changed, for the revision's history."
    )

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", "publish_%s")  # ids apart from the node form's on the page
        super().__init__(*args, **kwargs)


class WorkflowCreateForm(forms.Form):
    name = forms.CharField(max_length=200)
    task_type = forms.ChoiceField(
        required=False,
        help_text="Runs check their input against this task's requirements.",
    )

    def __init__(self, *args, task_types: list[tuple[str, str]], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["task_type"].choices = [("", "none")] + task_types

    def refused(self, error: ApplicationError) -> None:
        fields = [name for name in error.details if name in self.fields]
        for name in fields:
            self.add_error(name, error.message)
        if not fields:
            self.add_error(None, error.message)
