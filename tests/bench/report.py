"""The bench's figure rows and the table it prints: figure | project | bare boto3 | ratio | target | ok.

A row's ratio is project / bare (for rows read per match, the bare column is the floor's count of
rows: the matches plus the page). ``at_least`` marks a figure where more is better (throughput):
its ratio must reach the target instead of staying under it. A row without a target is reported
and not counted in the summary.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    name: str
    project: float | None  # None: not measured (the note says why)
    bare: float | None
    unit: str = "ms"
    target: float | None = None  # the ratio's limit
    at_least: bool = False  # the ratio must be >= target (throughput), else <= target
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.project is None or self.bare is None or self.bare == 0:
            return None
        return self.project / self.bare

    @property
    def ok(self) -> bool | None:
        """Within target; None when there is no target or nothing to compare."""
        if self.target is None or self.ratio is None:
            return None
        return self.ratio >= self.target if self.at_least else self.ratio <= self.target


def value_text(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "ms":
        return f"{value:.1f} ms" if value < 100 else f"{value:,.0f} ms"
    if unit == "rows":
        return f"{value:,.0f} rows"
    if unit == "MB":
        return f"{value:.1f} MB"
    return f"{value:,.0f} {unit}"


def target_text(figure: Figure) -> str:
    if figure.target is None:
        return "—"
    return f"{'>=' if figure.at_least else '<='} {figure.target:g}x"


def table(figures: Sequence[Figure]) -> str:
    """The figures as a Markdown table (docs/performance.md's format), then notes for rows that have one."""
    lines = ["| figure | project | bare boto3 | ratio | target | ok |", "|---|---|---|---|---|---|"]
    for f in figures:
        ratio = "—" if f.ratio is None else f"{f.ratio:.2f}x"
        ok = {True: "ok", False: "MISSED", None: ""}[f.ok]
        project, bare = value_text(f.project, f.unit), value_text(f.bare, f.unit)
        lines.append(f"| {f.name} | {project} | {bare} | {ratio} | {target_text(f)} | {ok} |")
    notes = [f"- {f.name}: {f.note}" for f in figures if f.note]
    return "\n".join(lines + (["", *notes] if notes else []))


def summary(figures: Sequence[Figure]) -> str:
    judged = [f.ok for f in figures if f.ok is not None]
    pending = sum(1 for f in figures if f.target is not None and f.ok is None)
    line = f"{sum(judged)} of {len(judged)} figures within target"
    return line + (f" ({pending} with a target not measured)" if pending else "")
