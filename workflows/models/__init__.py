"""Workflow tables: lookups, the task catalog, requirements, graphs, runs and traces.

One module per concern; everything is importable from ``workflows.models``.
"""

from workflows.models.batch import BatchJob, BatchJobItem, InvalidRowPolicy, ItemStatus
from workflows.models.catalog import TaskSignature, TaskType, X12Transaction
from workflows.models.graph import (
    NodeType,
    TriggerRule,
    Workflow,
    WorkflowNode,
    WorkflowRevision,
    WorkflowTransition,
)
from workflows.models.lookups import (
    JobStatusLu,
    RequirementTypeLu,
    TaskActionLu,
    TaskDomainLu,
    TaskSignatureSourceLu,
    WorkflowStatusLu,
)
from workflows.models.requirements import (
    FieldRequirement,
    FieldType,
    OrgRequirementPolicy,
    PayerRequirement,
    PolicyOperation,
    RequirementChangelog,
)
from workflows.models.runs import NodeRun, NodeRunStatus, RunResult, RunStatus, WorkflowRun
from workflows.models.traces import WorkflowTrace, WorkflowTraceEndpoint

__all__ = [
    "BatchJob",
    "BatchJobItem",
    "InvalidRowPolicy",
    "ItemStatus",
    "FieldRequirement",
    "FieldType",
    "JobStatusLu",
    "NodeRun",
    "NodeRunStatus",
    "NodeType",
    "OrgRequirementPolicy",
    "PayerRequirement",
    "PolicyOperation",
    "RequirementChangelog",
    "RequirementTypeLu",
    "RunResult",
    "RunStatus",
    "TaskActionLu",
    "TaskDomainLu",
    "TaskSignature",
    "TaskSignatureSourceLu",
    "TaskType",
    "TriggerRule",
    "Workflow",
    "WorkflowNode",
    "WorkflowRevision",
    "WorkflowRun",
    "WorkflowStatusLu",
    "WorkflowTrace",
    "WorkflowTraceEndpoint",
    "WorkflowTransition",
    "X12Transaction",
]
