"""Everything a report shows, computed once from (meta, records, speed)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from attnlab.report import provenance
from attnlab.report.grid import Grid, Record
from attnlab.report.leaderboard import grid_claims, grid_leaderboard


@dataclass(frozen=True)
class ReportData:
    meta: Mapping[str, Any]
    records: Sequence[Record]
    speed: Sequence[Mapping[str, Any]] | None
    grid: Grid
    rows: list[dict[str, Any]]  # `leaderboard_rows`
    claims: list[dict[str, Any]]  # `claim_rows`

    @property
    def baseline(self) -> str | None:
        return self.meta.get("baseline")

    @property
    def notes(self) -> list[str]:
        """The ablation's own notes, then the data problems found in the records."""
        return [*(str(n) for n in self.meta.get("notes") or []), *self.grid.issues, *provenance.notes(self.records)]


def compute(
    meta: Mapping[str, Any], records: Sequence[Record], speed: Sequence[Mapping[str, Any]] | None = None
) -> ReportData:
    grid = Grid.build(meta, records)
    baseline = meta.get("baseline")
    if baseline is not None and not grid.row_records(baseline):
        grid.issues.append(f"baseline row {baseline!r} has no records: no differences to it are shown.")
    rows = grid_leaderboard(grid, baseline)
    return ReportData(meta, records, speed, grid, rows, grid_claims(grid, meta))
