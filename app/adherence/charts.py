"""Small server-rendered SVG charts: readable without JavaScript, each with a text alternative.

A chart is built as a string from escaped parts and returned as ``Markup``; the title and
description name the figures, and every page that shows a chart also shows the same
numbers in a table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

from app.content.schemas import Instrument
from app.web.i18n import gettext as _

# Light to dark: from the mildest band to the most severe (colour is never the only cue:
# each band is labelled beside the chart).
BAND_COLOURS = ("#e3f1e3", "#f6f0cf", "#fbe1c4", "#f7cbbf", "#efb2b2", "#e39a9a")
GRID = "#c9ced6"


def _e(value: object) -> str:
    return escape(str(value), quote=True)


@dataclass
class Svg:
    """A tiny builder: elements are appended as already-escaped strings."""

    width: int
    height: int
    title: str
    description: str
    css_class: str = "chart"
    chart_id: str = "chart"
    fixed_size: bool = False

    def __post_init__(self) -> None:
        self.parts: list[str] = []

    def add(self, tag: str, text: str | None = None, **attrs: object) -> None:
        rendered = " ".join(
            f'{name.rstrip("_").replace("_", "-")}="{_e(value)}"' for name, value in attrs.items()
        )
        if text is None:
            self.parts.append(f"<{tag} {rendered}></{tag}>")
        else:
            self.parts.append(f"<{tag} {rendered}>{_e(text)}</{tag}>")

    def render(self) -> Markup:
        title_id = f"{self.chart_id}-t"
        desc_id = f"{self.chart_id}-d"
        size = f'width="{self.width}" height="{self.height}" ' if self.fixed_size else ""
        head = (
            f'<svg class="{_e(self.css_class)}" viewBox="0 0 {self.width} {self.height}" {size}'
            f'role="img" aria-labelledby="{_e(title_id)} {_e(desc_id)}" focusable="false" '
            f'xmlns="http://www.w3.org/2000/svg">'
            f'<title id="{_e(title_id)}">{_e(self.title)}</title>'
            f'<desc id="{_e(desc_id)}">{_e(self.description)}</desc>'
        )
        return Markup(head + "".join(self.parts) + "</svg>")  # noqa: S704 (every part escaped)


def sparkline(values: Sequence[int], *, low: int, high: int, label: str, chart_id: str) -> Markup:
    """A 100 by 24 trend line of questionnaire totals; the description lists them."""
    description = (
        f"{label}: " + ", ".join(str(v) for v in values)
        if values
        else _("%(label)s: no answers yet", label=label)
    )
    svg = Svg(
        100, 24, label, description, css_class="sparkline", chart_id=chart_id, fixed_size=True
    )
    if len(values) >= 1:
        span = max(1, high - low)
        step = 96 / max(1, len(values) - 1)
        points = [
            (2 + (step * i if len(values) > 1 else 48), 22 - 20 * (v - low) / span)
            for i, v in enumerate(values)
        ]
        if len(points) > 1:
            svg.add(
                "polyline",
                points=" ".join(f"{x:.1f},{y:.1f}" for x, y in points),
                fill="none",
                stroke="#2f5d8a",
                stroke_width=1.5,
            )
        x, y = points[-1]
        svg.add("circle", cx=f"{x:.1f}", cy=f"{y:.1f}", r=2, fill="#2f5d8a")
    return svg.render()


@dataclass(frozen=True)
class ScorePoint:
    label: str
    total: int


def score_chart(instrument: Instrument, points: Sequence[ScorePoint], *, chart_id: str) -> Markup:
    """Totals over time with the instrument's severity bands drawn as labelled stripes."""
    width, height = 640, 260
    left, right, top, bottom = 48, 170, 16, 36
    plot_w = width - left - right
    plot_h = height - top - bottom
    lo, hi = instrument.scoring.min, instrument.scoring.max
    span = max(1, hi - lo)

    def y(value: float) -> float:
        return top + plot_h * (1 - (value - lo) / span)

    bands = ", ".join(
        _("%(band)s %(low)s to %(high)s", band=b.label, low=b.min, high=b.max)
        for b in instrument.bands
    )
    values = ", ".join(f"{p.label} {p.total}" for p in points) or _("no answers yet")
    svg = Svg(
        width,
        height,
        _("%(title)s: totals over time", title=instrument.title),
        _("Severity bands: %(bands)s. Answers: %(values)s.", bands=bands, values=values),
        chart_id=chart_id,
    )
    for i, band in enumerate(instrument.bands):
        y_top = y(band.max + 0.5 if band.max < hi else hi)
        y_bottom = y(band.min - 0.5 if band.min > lo else lo)
        svg.add(
            "rect",
            x=left,
            y=f"{y_top:.1f}",
            width=plot_w,
            height=f"{max(0.0, y_bottom - y_top):.1f}",
            fill=BAND_COLOURS[min(i, len(BAND_COLOURS) - 1)],
            fill_opacity=0.35,
        )
        svg.add(
            "text",
            band.label,
            x=left + plot_w + 8,
            y=f"{(y_top + y_bottom) / 2 + 4:.1f}",
            class_="chart-tick",
        )
    svg.add("line", x1=left, y1=top, x2=left, y2=top + plot_h, class_="chart-axis")
    svg.add(
        "line", x1=left, y1=top + plot_h, x2=left + plot_w, y2=top + plot_h, class_="chart-axis"
    )
    svg.add(
        "text", str(hi), x=left - 6, y=f"{y(hi) + 4:.1f}", text_anchor="end", class_="chart-tick"
    )
    svg.add(
        "text", str(lo), x=left - 6, y=f"{y(lo) + 4:.1f}", text_anchor="end", class_="chart-tick"
    )
    n = len(points)
    coords = [
        (left + 16 + ((plot_w - 32) * i / (n - 1) if n > 1 else (plot_w - 32) / 2), y(p.total))
        for i, p in enumerate(points)
    ]
    if n > 1:
        svg.add(
            "polyline",
            points=" ".join(f"{x:.1f},{yy:.1f}" for x, yy in coords),
            class_="chart-line",
        )
    every = max(1, -(-n // 8))
    for i, ((x, yy), p) in enumerate(zip(coords, points, strict=True)):
        svg.add("circle", cx=f"{x:.1f}", cy=f"{yy:.1f}", r=4, class_="chart-dot")
        if i % every == 0 or i == n - 1:
            svg.add(
                "text",
                p.label,
                x=f"{x:.1f}",
                y=height - 12,
                text_anchor="middle",
                class_="chart-tick",
            )
    return svg.render()


def survival_chart(points: Sequence[tuple[int, float]], *, title: str, chart_id: str) -> Markup:
    """Share still in treatment by week, as a step line from 100 %."""
    width, height = 560, 220
    left, right, top, bottom = 48, 16, 16, 40
    plot_w = width - left - right
    plot_h = height - top - bottom
    weeks = max((w for w, _ in points), default=0) + 1
    description = (
        "; ".join(f"week {w + 1}: {round(s * 100)} %" for w, s in points) or "no enrollments"
    )
    svg = Svg(width, height, title, description, chart_id=chart_id)

    def x(week: float) -> float:
        return left + plot_w * week / max(1, weeks)

    def y(share: float) -> float:
        return top + plot_h * (1 - share)

    for share in (0.0, 0.5, 1.0):
        svg.add(
            "line",
            x1=left,
            y1=f"{y(share):.1f}",
            x2=left + plot_w,
            y2=f"{y(share):.1f}",
            stroke=GRID,
        )
        svg.add(
            "text",
            f"{round(share * 100)} %",
            x=left - 6,
            y=f"{y(share) + 4:.1f}",
            text_anchor="end",
            class_="chart-tick",
        )
    path = [f"{x(0):.1f},{y(1):.1f}"]
    previous = 1.0
    for week, share in points:
        path.append(f"{x(week):.1f},{y(previous):.1f}")
        path.append(f"{x(week):.1f},{y(share):.1f}")
        path.append(f"{x(week + 1):.1f},{y(share):.1f}")
        previous = share
    svg.add("polyline", points=" ".join(path), class_="chart-line")
    every = max(1, -(-weeks // 12))
    for week in range(0, weeks + 1, every):
        svg.add(
            "text",
            f"{week}",
            x=f"{x(week):.1f}",
            y=height - 22,
            text_anchor="middle",
            class_="chart-tick",
        )
    svg.add(
        "text",
        _("weeks since start"),
        x=left + plot_w / 2,
        y=height - 6,
        text_anchor="middle",
        class_="chart-tick",
    )
    return svg.render()


def bar_chart(bars: Sequence[tuple[str, float]], *, title: str, chart_id: str) -> Markup:
    """Shares (0..1) as vertical bars with their labels, e.g. retention per module."""
    width, height = 560, 220
    left, right, top, bottom = 48, 16, 16, 40
    plot_w = width - left - right
    plot_h = height - top - bottom
    description = "; ".join(f"{label}: {round(v * 100)} %" for label, v in bars) or _("no data")
    svg = Svg(width, height, title, description, chart_id=chart_id)
    slot = plot_w / max(1, len(bars))
    for share in (0.0, 0.5, 1.0):
        yy = top + plot_h * (1 - share)
        svg.add("line", x1=left, y1=f"{yy:.1f}", x2=left + plot_w, y2=f"{yy:.1f}", stroke=GRID)
        svg.add(
            "text",
            f"{round(share * 100)} %",
            x=left - 6,
            y=f"{yy + 4:.1f}",
            text_anchor="end",
            class_="chart-tick",
        )
    for i, (label, value) in enumerate(bars):
        h = plot_h * max(0.0, min(1.0, value))
        svg.add(
            "rect",
            x=f"{left + i * slot + slot * 0.15:.1f}",
            y=f"{top + plot_h - h:.1f}",
            width=f"{slot * 0.7:.1f}",
            height=f"{h:.1f}",
            fill="#2f5d8a",
        )
        svg.add(
            "text",
            label,
            x=f"{left + i * slot + slot / 2:.1f}",
            y=height - 22,
            text_anchor="middle",
            class_="chart-tick",
        )
    return svg.render()
