"""Daily charts as inline SVG, drawn on the server: no script, no external library.

Each chart is an ``<svg role="img">`` with a label; every point or bar carries a
``<title>`` (the browser's own tooltip) and the page shows the same numbers in a table. A
point or bar with no neighbour has its value written beside it.
Colours come from CSS classes (``series-<key>``), so the stylesheet owns the palette.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from html import escape

from markupsafe import Markup

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 12, 28


@dataclass(frozen=True)
class Series:
    key: str  # CSS class suffix, e.g. "up" -> series-up
    name: str
    values: Sequence[float | None]


def line_chart(
    label: str,
    days: Sequence[date],
    series: Sequence[Series],
    fmt: Callable[[float], str],
    *,
    y_max: float | None = None,
) -> Markup:
    """Lines over the days; a missing value (None) breaks the line instead of faking 0.

    The axis fits the data, but never goes past ``y_max`` (1.0 for a rate).
    """
    values = [v for s in series for v in s.values if v is not None]
    top = _scale(max(values, default=0.0))
    if y_max is not None:
        top = min(top, y_max)
    # With nothing to plot, a scale is noise: latency's read "1 ms, 1 ms, 0 ms, 0 ms".
    parts = [_frame(label, days, top, fmt, y_labels=bool(values))]
    for s in series:
        path, dots = [], []
        pen_down = False
        present = [v is not None for v in s.values]
        for i, value in enumerate(s.values):
            if value is None:
                pen_down = False
                continue
            x, y = _x(i, len(days)), _y(value, top)
            path.append(f"{'L' if pen_down else 'M'}{x:.1f},{y:.1f}")
            pen_down = True
            tip = f"{s.name}, {days[i]:%b %-d}: {fmt(value)}"
            # A value with no neighbour draws no line (every chart on a first day): a bigger
            # dot, with the value written beside it, so it reads without hovering.
            alone = _alone(present, i)
            dots.append(
                f'<circle class="dot" cx="{x:.1f}" cy="{y:.1f}" r="{5 if alone else 3}">'
                f"<title>{escape(tip)}</title></circle>"
            )
            if alone:
                dots.append(_value_label(x, y, fmt(value)))
        parts.append(
            f'<g class="series series-{escape(s.key)}"><path class="line" d="{" ".join(path)}"/>'
            f"{''.join(dots)}</g>"
        )
    return _svg(label, parts)


def stacked_bar_chart(
    label: str, days: Sequence[date], series: Sequence[Series], fmt: Callable[[float], str]
) -> Markup:
    """Bars of counts stacked bottom-up in ``series`` order (thumbs up, then down)."""
    totals = [sum(s.values[i] or 0.0 for s in series) for i in range(len(days))]
    top = _scale(max(totals, default=0.0), integer=True)
    parts = [_frame(label, days, top, fmt)]
    slot = (WIDTH - LEFT - RIGHT) / max(len(days), 1)
    bar = max(2.0, min(18.0, slot * 0.7))
    for s_index, s in enumerate(series):
        rects = []
        for i, value in enumerate(s.values):
            if not value:
                continue
            below = sum(series[j].values[i] or 0.0 for j in range(s_index))
            y_top, y_bottom = _y(below + value, top), _y(below, top)
            tip = f"{s.name}, {days[i]:%b %-d}: {fmt(value)}"
            rects.append(
                f'<rect x="{_x(i, len(days)) - bar / 2:.1f}" y="{y_top:.1f}" width="{bar:.1f}"'
                f' height="{max(y_bottom - y_top, 0.5):.1f}"><title>{escape(tip)}</title></rect>'
            )
        parts.append(f'<g class="series series-{escape(s.key)}">{"".join(rects)}</g>')
    has_bar = [total > 0 for total in totals]
    for i, total in enumerate(totals):
        if _alone(has_bar, i):  # a lone bar (a first day's chart): its total over it
            parts.append(_value_label(_x(i, len(days)), _y(total, top), fmt(total)))
    return _svg(label, parts)


def _alone(present: Sequence[bool], i: int) -> bool:
    """True when day ``i`` has a value and neither day beside it has one."""
    before = i > 0 and present[i - 1]
    after = i + 1 < len(present) and present[i + 1]
    return present[i] and not before and not after


def _value_label(x: float, y: float, text: str) -> str:
    """``text`` over the point at (x, y), kept inside the plot; under it when the point is
    at the top."""
    x = min(max(x, LEFT + 24), WIDTH - RIGHT - 24)
    y = y - 9 if y - 9 >= TOP + 10 else y + 18
    return f'<text class="value-label" x="{x:.1f}" y="{y:.1f}">{escape(text)}</text>'


def _svg(label: str, parts: Sequence[str]) -> Markup:
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img"'
        f' aria-label="{escape(label)}" preserveAspectRatio="xMidYMid meet">'
        f"{''.join(parts)}</svg>"
    )


def _frame(
    label: str,
    days: Sequence[date],
    top: float,
    fmt: Callable[[float], str],
    *,
    y_labels: bool = True,
) -> str:
    """Grid lines with y labels (unless not ``y_labels``), and a few date labels along the
    bottom."""
    out = ['<g class="grid" aria-hidden="true">']
    for k in range(5):
        value = top * k / 4
        y = _y(value, top)
        out.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>')
        if y_labels:
            out.append(
                f'<text class="y-label" x="{LEFT - 6}" y="{y + 4:.1f}">{escape(fmt(value))}</text>'
            )
    n = len(days)
    step = max(1, math.ceil(n / 7))
    shown = sorted({*range(0, n, step), n - 1}) if n else []
    if len(shown) > 1 and shown[-1] - shown[-2] < step / 2:
        shown.pop(-2)  # the last label would overlap its neighbour
    for i in shown:
        out.append(
            f'<text class="x-label" x="{_x(i, n):.1f}" y="{HEIGHT - 8}">'
            f"{escape(f'{days[i]:%b %-d}')}</text>"
        )
    out.append("</g>")
    return "".join(out)


def _x(i: int, n: int) -> float:
    slot = (WIDTH - LEFT - RIGHT) / max(n, 1)
    return LEFT + slot * (i + 0.5)


def _y(value: float, top: float) -> float:
    usable = HEIGHT - TOP - BOTTOM
    return TOP + usable * (1 - (value / top if top else 0.0))


def _scale(value: float, *, integer: bool = False) -> float:
    """The top of an axis with four equal steps of 1, 2, 2.5 or 5 times a power of ten,
    at or above ``value``; whole steps for counts."""
    if value <= 0:
        return 4.0 if integer else 1.0
    raw = value / 4
    power = 10.0 ** math.floor(math.log10(raw))
    for multiple in (1, 2, 2.5, 5, 10):
        step = multiple * power
        if integer and (step < 1 or step != int(step)):
            continue
        if raw <= step:
            return 4 * step
    return 4 * max(1.0, 10 * power)
