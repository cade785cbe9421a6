"""What an import did (or, dry, would do): counts per table, and every row it did not bring
over as it was, with the reason.

Each line of the report is one path of the mapping, a v3 table to a V8 table; its counts add
up: ``read = created + updated + unchanged + skipped + rejected``.

- *unchanged*: imported before and the same since (a second run is all unchanged);
- *skipped*: left out by a rule of the mapping (a state without an embedding has no
  micro-state; an inactive requirement version), or kept as the platform already had it;
- *rejected*: could not be imported as it is (a duplicate email, an unknown value, a number
  that is not one); fix the source or map the value, and run again.

*Notes* are facts about rows that were imported, worth a look (a trace whose batch row is gone,
a user imported as platform staff). Issues carry the v3 row's key and never a secret's value.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field

from dbadmin.legacy.values import Placed

REJECTED, SKIPPED, NOTE = "rejected", "skipped", "note"
# How many issues the JSON report (and migration_run) keeps; the counts stay exact.
ISSUES_KEPT = 1000
# How many the human report prints of each level.
ISSUES_SHOWN = 40

# The mapping's paths, in the order the import takes them: (key, v3 table, V8 table).
PATHS = (
    ("organization", "organization", "organization"),
    ("app_user", "app_user", "app_user + user_organization"),
    ("portal_type", "portal_type", "channel_type"),
    ("task_type", "task_type", "task_type"),
    ("field_requirement", "field_requirement (fields)", "field_requirement"),
    ("org_requirement", "field_requirement (fields)", "org_requirement_policy"),
    ("integration_endpoint", "integration_endpoint", "endpoint"),
    ("credential", "integration_endpoint.config", "portal_credential"),
    ("task_signature", "task_signature", "task_signature"),
    ("legacy_workflow", "integration_endpoint", "user_workflow (legacy memory)"),
    ("state_node", "rcm_state", "workflow_node"),
    ("micro_state", "rcm_state", "micro_state"),
    ("rcm_transition", "rcm_transition", "workflow_transition"),
    ("batch_job", "batch_job", "batch_job"),
    ("batch_row", "batch_row", "batch_job_item"),
    ("rcm_trace", "rcm_trace", "workflow_trace + workflow_trace_endpoint"),
    ("credential_access_log", "credential_access_log", "credential_access_log"),
)
OUTCOMES = ("created", "updated", "unchanged", "skipped", "rejected")


@dataclass
class Count:
    source: str
    target: str
    read: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    rejected: int = 0


@dataclass(frozen=True)
class Issue:
    path: str
    legacy_id: str
    level: str
    reason: str


@dataclass
class Report:
    dry_run: bool
    counts: dict[str, Count] = field(
        default_factory=lambda: {key: Count(source, target) for key, source, target in PATHS}
    )
    issues: list[Issue] = field(default_factory=list)
    issue_counts: Counter = field(default_factory=Counter)
    values: list[Placed] = field(default_factory=list)
    unmapped: dict[str, dict[str, str]] = field(default_factory=dict)

    # -- counting ------------------------------------------------------------------------------

    def read(self, path: str, count: int = 1) -> None:
        self.counts[path].read += count

    def tally(self, path: str, outcome: str, count: int = 1) -> None:
        count_row = self.counts[path]
        setattr(count_row, outcome, getattr(count_row, outcome) + count)

    def reject(self, path: str, legacy_id, reason: str, *, count: int = 1) -> None:
        self.tally(path, REJECTED, count)
        self._issue(path, legacy_id, REJECTED, reason)

    def skip(self, path: str, legacy_id, reason: str, *, count: int = 1) -> None:
        self.tally(path, SKIPPED, count)
        self._issue(path, legacy_id, SKIPPED, reason)

    def note(self, path: str, legacy_id, reason: str) -> None:
        self._issue(path, legacy_id, NOTE, reason)

    def _issue(self, path: str, legacy_id, level: str, reason: str) -> None:
        self.issue_counts[level] += 1
        if len(self.issues) < ISSUES_KEPT:
            self.issues.append(Issue(path, str(legacy_id), level, reason))

    def total(self, outcome: str) -> int:
        return sum(getattr(count, outcome) for count in self.counts.values())

    # -- output --------------------------------------------------------------------------------

    def summary(self) -> str:
        verb = "would create" if self.dry_run else "created"
        totals = ", ".join(
            f"{self.total(outcome)} {verb if outcome == 'created' else outcome}"
            for outcome in OUTCOMES
        )
        prefix = "Dry run of the v3 import" if self.dry_run else "v3 import"
        return f"{prefix}: {totals}."

    def as_dict(self) -> dict:
        return {
            "dry_run": self.dry_run,
            "tables": [{"path": key, **asdict(count)} for key, count in self.counts.items()],
            "totals": {outcome: self.total(outcome) for outcome in ("read", *OUTCOMES)},
            "values": [asdict(placed) for placed in self.values],
            "unmapped": self.unmapped,
            "issue_counts": dict(self.issue_counts),
            "issues": [asdict(issue) for issue in self.issues],
        }

    def lines(self) -> list[str]:
        """The human report: the table of counts, the values placed, then the issues."""
        would = "would " if self.dry_run else ""
        headers = ("v3 table", "V8 table", "read", f"{would}create", f"{would}update")
        headers += ("unchanged", "skipped", "rejected")
        rows = [
            (
                count.source,
                count.target,
                *(str(getattr(count, name)) for name in ("read", *OUTCOMES)),
            )
            for count in self.counts.values()
        ]
        widths = [max(len(row[i]) for row in (headers, *rows)) for i in range(len(headers))]

        def line(cells) -> str:
            texts = [
                cell.ljust(width) if i < 2 else cell.rjust(width)
                for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
            ]
            return "  ".join(texts).rstrip()

        out = [line(headers), line(["-" * width for width in widths]), *map(line, rows)]
        if self.values:
            out += ["", "v3 values placed in V8:"]
            out += [
                f"  {placed.vocabulary}: {placed.value} -> {placed.target} ({placed.how})"
                for placed in self.values
            ]
        for level in (REJECTED, SKIPPED, NOTE):
            chosen = [issue for issue in self.issues if issue.level == level]
            if not self.issue_counts[level]:
                continue
            out += ["", f"{level.capitalize()} ({self.issue_counts[level]}):"]
            out += [
                f"  {issue.path} {issue.legacy_id}: {issue.reason}"
                for issue in chosen[:ISSUES_SHOWN]
            ]
            if self.issue_counts[level] > ISSUES_SHOWN:
                out.append(
                    f"  ... and {self.issue_counts[level] - ISSUES_SHOWN} more (--json lists "
                    f"up to {ISSUES_KEPT} issues)"
                )
        return out
