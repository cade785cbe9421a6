"""What the engine announces, and who listens: a finished run.

The engine is the lowest layer of workflows: it knows node kinds only through their registry,
and what reacts to a run's end only through this one (STYLE §15). A listener registers in its
``AppConfig.ready()`` (the batch service's settling, in ``WorkflowsConfig``) and is called inside
the transaction that finishes the run, so what it writes commits or rolls back with the run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from workflows.models import WorkflowRun


@dataclass(frozen=True)
class RunFinished:
    """A run reached its end: its final status, its result (success or failure, from the
    outcome reached) and its error in words."""

    run: WorkflowRun
    status: str
    result: str
    error: str


RunFinishedListener = Callable[[RunFinished], None]
_LISTENERS: list[RunFinishedListener] = []


def on_run_finished(listener: RunFinishedListener) -> RunFinishedListener:
    """Call ``listener`` at the end of every run (once, however often ``ready()`` runs)."""
    if listener not in _LISTENERS:
        _LISTENERS.append(listener)
    return listener


def run_finished_announce(event: RunFinished) -> None:
    for listener in _LISTENERS:
        listener(event)
