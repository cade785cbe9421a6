"""The shape of a task's effective field: what ``requirements_effective`` resolves from the
platform's, the payer's and the organization's layers, and what a row is checked against."""

from __future__ import annotations

import dataclasses
from typing import Any

from rcm.lookups import RequirementType


@dataclasses.dataclass(frozen=True)
class EffectiveField:
    """One field of the effective set, with the layers that shaped it (``sources``)."""

    field_name: str
    label: str
    field_type: str
    rtype: str
    is_array: bool = False
    validation: dict[str, Any] = dataclasses.field(default_factory=dict)
    conditional_on: dict[str, Any] | None = None
    display_order: int = 0
    path: str = ""
    sources: tuple[str, ...] = ()

    @property
    def is_input(self) -> bool:
        return self.rtype != RequirementType.OUTPUT
