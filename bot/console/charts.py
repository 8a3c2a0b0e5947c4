"""Bar charts as server-rendered SVG geometry (no charting library, no script).

Returns plain numbers the template draws as <rect> elements, so the charts obey the
console's Content-Security-Policy and print as they look.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence


@dataclass
class Bar:
    """One bar: its label, value and geometry in the chart's coordinates."""

    label: str
    value: int
    x: float
    y: float
    width: float
    height: float


@dataclass
class Chart:
    """A vertical bar chart."""

    bars: list[Bar]
    width: int
    height: int
    top: int

    @property
    def label_every(self) -> int:
        """Show every n-th label so they do not overlap."""
        return max(1, len(self.bars) // 12)


def bars(points: Sequence[tuple[str, int]], width: int = 720, height: int = 180,
         gap: float = 0.2) -> Chart:
    """Lay out vertical bars for (label, value) points."""
    top = max((value for _, value in points), default=0) or 1
    slot = width / max(1, len(points))
    laid = []
    for i, (label, value) in enumerate(points):
        h = height * value / top
        laid.append(Bar(label, value, x=round(i * slot + slot * gap / 2, 1),
                        y=round(height - h, 1), width=round(slot * (1 - gap), 1),
                        height=round(h, 1)))
    return Chart(laid, width, height, top)
