"""Charts drawn on the server as inline SVG: stacked bars, sparklines and day strips.

Colours are CSS classes (`series-N`, `state-...`) resolved by the dashboard's stylesheet,
so dark mode and the one-colour-per-state rule apply to charts as to everything else.
Every bar carries a `<title>`, which browsers show on hover and screen readers read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape

from markupsafe import Markup

SERIES_COLOURS = 6  # series-0 … series-5 in the stylesheet; more series share the last


@dataclass(frozen=True)
class Buckets:
    """Counts over time: one list of counts per series, one start time per bucket."""

    starts: Sequence[datetime]
    series: Mapping[str, Sequence[int]]
    unit: str = "events"

    @property
    def totals(self) -> list[int]:
        """Each bucket's count over all series."""
        return [sum(values[i] for values in self.series.values()) for i in range(len(self.starts))]

    @property
    def peak(self) -> int:
        """The tallest bucket, which the chart's height stands for."""
        return max(self.totals, default=0)


def _attr(value: object) -> str:
    return escape(str(value), quote=True)


def _time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def stacked_bars(
    buckets: Buckets, *, height: int = 140, label: str, link: str | None = None
) -> Markup:
    """Bars per bucket, one colour per series stacked; scaled to the tallest bucket.

    With `link`, each bar links to it with `since` and `until` of its bucket appended,
    so a bar of the events chart opens those events."""
    count = len(buckets.starts)
    width = max(count * 6, 240)
    top = buckets.peak or 1
    step = width / max(count, 1)
    bar = max(step - 1, 1)
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" preserveAspectRatio="none" '
        f'role="img" aria-label="{_attr(label)}">'
    ]
    for i, start in enumerate(buckets.starts):
        end = buckets.starts[i + 1] if i + 1 < count else None
        y = float(height)
        pieces = []
        for n, (name, values) in enumerate(buckets.series.items()):
            value = values[i]
            if not value:
                continue
            h = value / top * (height - 2)
            y -= h
            colour = min(n, SERIES_COLOURS - 1)
            pieces.append(
                f'<rect class="series-{colour}" x="{i * step:.2f}" y="{y:.2f}" '
                f'width="{bar:.2f}" height="{h:.2f}"><title>{_attr(name)}: {value:,} '
                f"{_attr(buckets.unit)} from {_time(start)}</title></rect>"
            )
        if not pieces:
            continue
        group = "".join(pieces)
        if link and end is not None:
            separator = "&amp;" if "?" in link else "?"
            href = (
                f"{_attr(link)}{separator}since={_attr(start.isoformat())}"
                f"&amp;until={_attr(end.isoformat())}"
            )
            group = f'<a href="{href}">{group}</a>'
        parts.append(group)
    parts.append("</svg>")
    return Markup("".join(parts))


def sparkline(values: Sequence[int], *, label: str, width: int = 96, height: int = 22) -> Markup:
    """Small bars for a table cell; an empty line when every value is zero."""
    top = max(values, default=0)
    step = width / max(len(values), 1)
    parts = [
        f'<svg class="spark" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{_attr(label)}">',
        f'<line class="baseline" x1="0" y1="{height - 0.5}" x2="{width}" y2="{height - 0.5}"/>',
    ]
    if top:
        for i, value in enumerate(values):
            if value:
                h = max(value / top * (height - 1), 1.5)
                w = max(step - 0.6, 0.8)
                parts.append(
                    f'<rect x="{i * step:.2f}" y="{height - h:.2f}" width="{w:.2f}" '
                    f'height="{h:.2f}"><title>{value:,}</title></rect>'
                )
    parts.append("</svg>")
    return Markup("".join(parts))


QUIET = frozenset({"ok", "none"})  # days drawn as runs, without a title of their own


def strip(cells: Sequence[tuple[str, str]], *, label: str, size: int = 10) -> Markup:
    """One square per day that something happened, coloured by state (`state-missed`, …)
    with a title such as "2026-12-01: missed at 09:05, recovered at 09:40"; the quiet
    days between (ok, or before the SLA existed) drawn as one bar per run."""
    pitch = size + 2
    width = len(cells) * pitch
    parts = [
        f'<svg class="strip" viewBox="0 0 {width} {size}" width="{width}" height="{size}" '
        f'role="img" aria-label="{_attr(label)}">'
    ]
    i = 0
    while i < len(cells):
        state, title = cells[i]
        if state in QUIET:
            end = i
            while end + 1 < len(cells) and cells[end + 1][0] == state:
                end += 1
            parts.append(
                f'<rect class="state-{state}" x="{i * pitch}" y="{size // 2 - 2}" '
                f'width="{(end - i + 1) * pitch - 2}" height="4" rx="2"/>'
            )
            i = end + 1
            continue
        parts.append(
            f'<rect class="state-{_attr(state)}" x="{i * pitch}" y="0" width="{size}" '
            f'height="{size}" rx="2"><title>{_attr(title)}</title></rect>'
        )
        i += 1
    parts.append("</svg>")
    return Markup("".join(parts))
