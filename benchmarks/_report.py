"""Rows of results: the printed table and the JSON file."""

from __future__ import annotations

import json
import math
from dataclasses import KW_ONLY, asdict, dataclass, field
from pathlib import Path
from typing import Literal

__all__ = ["Row", "Target", "format_table", "missed_summary", "write_json"]

Comparison = Literal["<=", ">="]


@dataclass(frozen=True)
class Target:
    """A goal, checked against ``Row.ratio`` (or ``Row.value`` if no ratio)."""

    comparison: Comparison
    bound: float

    def met(self, measured: float | None) -> bool | None:
        if measured is None or math.isnan(measured):
            return None
        return measured <= self.bound if self.comparison == "<=" else measured >= self.bound

    def __str__(self) -> str:
        return f"{self.comparison} {self.bound:g}"


@dataclass
class Row:
    """One measured quantity, SDK side and (when there is one) the bare baseline.

    ``value`` and ``baseline`` are medians in ``unit``; ``ratio`` is
    SDK / baseline measured in the same run (for paired timings, the median of
    the per-round ratios). ``status`` is ``"ok"``, ``"not available"`` (a
    feature or model variant that does not exist yet), ``"not run"`` or ``"failed"``.
    """

    section: str
    name: str
    _: KW_ONLY
    variant: str = "-"
    provider: str = "cpu"
    unit: str = "ms"
    value: float | None = None
    baseline: float | None = None
    ratio: float | None = None
    target: Target | None = None
    status: str = "ok"
    note: str = ""
    details: dict[str, object] = field(default_factory=dict)

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        return self.target.met(self.ratio if self.ratio is not None else self.value)

    def as_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["target"] = str(self.target) if self.target else None
        data["met"] = self.met
        return data


def _number(value: float | None, unit: str) -> str:
    if value is None or math.isnan(value):
        return "-"
    if unit == "ms":
        return f"{value:.1f}" if value >= 10 else f"{value:.2f}"
    if unit in {"MiB", "GFLOP/s"}:
        return f"{value:.0f}" if value >= 100 else f"{value:.1f}"
    if unit == "s":
        return f"{value:.2f}"
    return f"{value:.3g}"


def format_table(rows: list[Row]) -> str:
    """A fixed-width text table, grouped by section, for the terminal."""
    header = ["section", "row", "variant", "unit", "SDK", "bare", "ratio", "target", "note"]
    lines: list[list[str]] = []
    for row in rows:
        if row.status != "ok":
            value, baseline, ratio = row.status, "", ""
        else:
            value = _number(row.value, row.unit)
            baseline = _number(row.baseline, row.unit)
            ratio = "-" if row.ratio is None else f"{row.ratio:.3f}x"
        met = row.met
        target = (
            ""
            if row.target is None
            else f"{row.target} " + ("ok" if met else "MISSED" if met is False else "?")
        )
        lines.append(
            [row.section, row.name, row.variant, row.unit, value, baseline, ratio, target, row.note]
        )
    widths = [max(len(str(cells[i])) for cells in [header, *lines]) for i in range(len(header))]
    widths[-1] = 0  # the note runs on
    rule = "  ".join("-" * width for width in widths[:-1])

    def render(cells: list[str]) -> str:
        return "  ".join(
            cell.ljust(width) if index < 3 or index >= 7 else cell.rjust(width)
            for index, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    out = [render(header), rule]
    previous = None
    for cells in lines:
        if previous is not None and cells[0] != previous:
            out.append("")
        previous = cells[0]
        out.append(render(cells))
    return "\n".join(out)


def missed_summary(rows: list[Row]) -> tuple[int, str]:
    """How many targets were missed, and the closing line that says so."""
    checked = [row for row in rows if row.target is not None and row.met is not None]
    missed = [row for row in checked if row.met is False]
    if not checked:
        return 0, "no targets checked"
    if not missed:
        return 0, f"all {len(checked)} targets met"
    names = "; ".join(f"{row.name.strip()} ({row.variant}, {row.provider})" for row in missed)
    return len(missed), f"{len(missed)} of {len(checked)} targets missed: {names}"


def write_json(path: Path, header: dict[str, object], rows: list[Row]) -> None:
    """Write ``{..header, "rows": [...]}`` to ``path`` (parents created), atomically."""
    from edgesam._atomic import atomic_writer

    payload = dict(header, rows=[row.as_dict() for row in rows])
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_writer(path) as stream:
        stream.write((json.dumps(payload, indent=2, default=str) + "\n").encode())
