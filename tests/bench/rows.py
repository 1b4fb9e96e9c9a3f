"""One figure against the floor: the project's value, bare boto3's doing the same DynamoDB work, their
ratio and its target. The bench modules return these rows so that `make bench` prints them together."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple


class Row(NamedTuple):
    name: str  # what is measured, with its unit
    project: float
    bare: float
    ratio: float  # project / bare
    target: str  # "<= 1.5" (ratio at most) or ">= 0.8" (ratio at least); "" when only reported

    @property
    def met(self) -> bool | None:
        """Whether the ratio is within its target; None for a figure without one."""
        if not self.target:
            return None
        sign, bound = self.target.split()
        return self.ratio <= float(bound) if sign == "<=" else self.ratio >= float(bound)


def row(name: str, project: float, bare: float, target: str = "") -> Row:
    return Row(name, project, bare, project / bare if bare else float("inf"), target)


def print_rows(rows: Iterable[Row]) -> bool:
    """Prints the table; True when every target is met."""
    print(f"\n{'figure':52} {'project':>10} {'bare':>10} {'ratio':>7}  target")
    ok = True
    for figure in rows:
        verdict = {None: "", True: "ok", False: "MISSED"}[figure.met]
        ok = ok and figure.met is not False
        print(
            f"{figure.name:52} {figure.project:10.1f} {figure.bare:10.1f} {figure.ratio:6.2f}x"
            f"  {figure.target:7} {verdict}"
        )
    return ok
