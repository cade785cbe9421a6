"""What other apps may use of the workflow engine, and nothing more.

The engine (``workflows/engine/``) is the app's lowest layer and its own business: an app above
reaches it only through these names (an import contract in ``pyproject.toml`` holds it). That
is what a node kind needs — registering itself (``webactions`` does, in its ``ready()``), the
results and errors it returns, the template language its configs are written in — and the
shapes of a graph's nodes and edges, which the console's editor and the legacy importer check
through the authoring services.
"""

from workflows.engine.graph import Edge, Node
from workflows.engine.kinds import (
    SUCCESS,
    BusinessFailure,
    NodeKind,
    NodeResult,
    PermanentError,
    TransientError,
)
from workflows.engine.kinds import names as kind_names
from workflows.engine.kinds import register as kind_register
from workflows.engine.templates import (
    Reference,
    TemplateError,
    references,
    render_value,
    template_problems,
)

__all__ = [
    "SUCCESS",
    "BusinessFailure",
    "Edge",
    "Node",
    "NodeKind",
    "NodeResult",
    "PermanentError",
    "Reference",
    "TemplateError",
    "TransientError",
    "kind_names",
    "kind_register",
    "references",
    "render_value",
    "template_problems",
]
