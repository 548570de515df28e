"""Small inline-SVG charts for the intelligence report: no library, no network, no script.

Every chart is a self-contained `<svg>` element, returned as `Markup`, whose colours come
from CSS classes (`s0`..`s5` series, `band-*` regimes, `axis`, `grid`), so the page's
stylesheet decides light or dark. Points carry a `<title>`, the browser's own tooltip.

Every element is built with `svg(template, *values)`: markupsafe (Jinja's escaping)
escapes each value, so a label or tooltip that came from a producer cannot open a tag.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from markupsafe import Markup

from amc_learning.intelligence.report import Bin

WIDTH = 880
MARGIN = (16, 24, 34, 64)  # top, right, bottom, left


@dataclass(frozen=True)
class Scale:
    """Linear map from data [lo, hi] to pixels [a, b]."""

    lo: float
    hi: float
    a: float
    b: float

    def __call__(self, value: float) -> float:
        span = self.hi - self.lo or 1.0
        return self.a + (value - self.lo) / span * (self.b - self.a)


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering [lo, hi] (1, 2, 2.5 or 5 times a power of ten)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    ticks: list[float] = []
    value = first
    while value <= hi + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    return ticks


def date_ticks(lo: date, hi: date, count: int = 6) -> list[date]:
    """Month starts (or year starts on long spans) between lo and hi, about `count` of them."""
    months = (hi.year - lo.year) * 12 + hi.month - lo.month
    every = next((m for m in (1, 2, 3, 6, 12, 24, 60) if months / m <= count), 120)
    ticks: list[date] = []
    year, month = lo.year, lo.month
    while True:
        month += 1
        if month > 12:
            year, month = year + 1, 1
        tick = date(year, month, 1)
        if tick > hi:
            return ticks
        index = year * 12 + month - 1
        if index % every == 0:
            ticks.append(tick)


def svg(template: str, *values: object) -> Markup:
    """One SVG fragment: `template` is ours, every value is escaped (format specs work)."""
    return Markup(template).format(*values)


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 10_000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 1:
        return f"{value:.2f}".rstrip("0").rstrip(".")
    return f"{value:.3f}".rstrip("0").rstrip(".")


@dataclass
class Canvas:
    """An SVG drawing area with margins; collects elements, then `render`s them."""

    height: int
    label: str
    width: int = WIDTH
    margin: tuple[int, int, int, int] = MARGIN
    parts: list[Markup] = field(default_factory=list)

    @property
    def left(self) -> float:
        return self.margin[3]

    @property
    def right(self) -> float:
        return self.width - self.margin[1]

    @property
    def top(self) -> float:
        return self.margin[0]

    @property
    def bottom(self) -> float:
        return self.height - self.margin[2]

    def add(self, element: Markup) -> None:
        self.parts.append(element)

    def text(self, x: float, y: float, text: str, cls: str = "tick", anchor: str = "middle",
             rotate: bool = False) -> None:
        turn = svg(' transform="rotate(-90 {:.1f} {:.1f})"', x, y) if rotate else ""
        self.add(svg('<text x="{:.1f}" y="{:.1f}" class="{}" text-anchor="{}"{}>{}</text>',
                     x, y, cls, anchor, turn, text))

    def y_axis(self, scale: Scale, ticks: Sequence[float], label: str,
               fmt: object = _fmt) -> None:
        for tick in ticks:
            y = scale(tick)
            self.add(svg('<line x1="{:.1f}" x2="{:.1f}" y1="{:.1f}" y2="{:.1f}" class="grid"/>',
                         self.left, self.right, y, y))
            self.text(self.left - 6, y + 4, fmt(tick), anchor="end")  # type: ignore[operator]
        self.text(14, (self.top + self.bottom) / 2, label, cls="label", rotate=True)

    def x_axis(self, ticks: Sequence[tuple[float, str]], label: str = "",
               base: float | None = None) -> None:
        """The axis line at `base` (default: the bottom), tick labels under the plot."""
        y = self.bottom if base is None else base
        self.add(svg('<line x1="{:.1f}" x2="{:.1f}" y1="{:.1f}" y2="{:.1f}" class="axis"/>',
                     self.left, self.right, y, y))
        for x, text in ticks:
            self.add(svg('<line x1="{:.1f}" x2="{:.1f}" y1="{:.1f}" y2="{:.1f}" class="axis"/>',
                         x, x, y, y + 4))
            self.text(x, self.bottom + 16, text)
        if label:
            self.text((self.left + self.right) / 2, self.height - 3, label, cls="label")

    def render(self) -> Markup:
        return svg('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {} {}" role="img" '
                   'aria-label="{}" class="chart"><title>{}</title>{}</svg>', self.width,
                   self.height, self.label, self.label, Markup("").join(self.parts))


def polyline(points: Sequence[tuple[float, float]], cls: str) -> Markup:
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    return svg('<polyline points="{}" class="{}" fill="none"/>', path, cls)


def empty(label: str, why: str, height: int = 80) -> Markup:
    canvas = Canvas(height, label)
    canvas.text(canvas.width / 2, height / 2 + 4, why, cls="note")
    return canvas.render()


@dataclass(frozen=True)
class Series:
    name: str
    days: Sequence[date]
    values: Sequence[float | None]


@dataclass(frozen=True)
class Band:
    start: date
    end: date
    cls: str
    title: str


@dataclass(frozen=True)
class Mark:
    day: date
    value: float
    cls: str
    title: str
    shape: str = "circle"  # circle | cross | diamond


def time_chart(label: str, series: Sequence[Series], *, y_label: str, height: int = 260,
               bands: Sequence[Band] = (), strip: Sequence[Band] = (),
               marks: Sequence[Mark] = (), rules: Sequence[tuple[date, str]] = (),
               log_y: bool = False) -> Markup:
    """Lines over dates; optional background bands, a thin band strip under the plot,
    point marks and vertical rules (each with a tooltip)."""
    days = [d for s in series for d, v in zip(s.days, s.values, strict=True) if v is not None]
    days += [m.day for m in marks]
    if not days:
        return empty(label, "no data yet")
    values = [v for s in series for v in s.values if v is not None] + [m.value for m in marks]
    lo_day, hi_day = min(days), max(days)
    if hi_day == lo_day:
        hi_day = lo_day + timedelta(days=1)
    keyed = len(series) > 1
    canvas = Canvas(height + (14 if strip else 0) + (14 if keyed else 0), label,
                    margin=(MARGIN[0] + (14 if keyed else 0), *MARGIN[1:]))
    bottom = canvas.bottom - (14 if strip else 0)
    x = Scale(lo_day.toordinal(), hi_day.toordinal(), canvas.left, canvas.right)
    lo, hi = min(values), max(values)
    if log_y and lo > 0:
        transform, back = math.log10, lambda v: 10**v
    else:
        log_y = False
        transform, back = float, float
    t_lo, t_hi = transform(lo), transform(hi)
    pad = (t_hi - t_lo) * 0.05 or 1.0
    y = Scale(t_lo - pad, t_hi + pad, bottom, canvas.top)
    for band in bands:
        x0, x1 = x(band.start.toordinal()), x(band.end.toordinal() + 1)
        canvas.add(svg('<rect x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{:.1f}" class="{}">'
                       "<title>{}</title></rect>", x0, canvas.top, max(x1 - x0, 0.5),
                       bottom - canvas.top, band.cls, band.title))
    for band in strip:
        x0, x1 = x(band.start.toordinal()), x(band.end.toordinal() + 1)
        canvas.add(svg('<rect x="{:.1f}" y="{:.1f}" width="{:.1f}" height="9" class="{}">'
                       "<title>{}</title></rect>", x0, bottom + 3, max(x1 - x0, 0.5),
                       band.cls, band.title))
    if log_y:  # round values placed on the log scale: decades when it spans several
        if y.hi - y.lo > 1.5:
            ticks: list[float] = [m * 10.0**e for e in range(math.floor(y.lo), math.ceil(y.hi) + 1)
                     for m in ((1,) if y.hi - y.lo > 3 else (1, 3))
                     if y.lo <= math.log10(m * 10.0**e) <= y.hi]
        else:
            ticks = nice_ticks(back(y.lo), back(y.hi), 5)
        canvas.y_axis(y, [transform(t) for t in ticks if t > 0], y_label,
                      fmt=lambda t: _fmt(back(t)))
    else:
        canvas.y_axis(y, nice_ticks(y.lo, y.hi), y_label)
    months = date_ticks(lo_day, hi_day)
    canvas.x_axis([(x(t.toordinal()), t.strftime("%b %Y" if t.month == 1 or len(months) < 4
                                                   else "%b")) for t in months], base=bottom)
    for day, title in rules:
        px = x(day.toordinal())
        canvas.add(svg('<line x1="{:.1f}" x2="{:.1f}" y1="{:.1f}" y2="{:.1f}" class="rule">'
                       "<title>{}</title></line>", px, px, canvas.top, bottom, title))
    for i, s in enumerate(series):
        run: list[tuple[float, float]] = []
        for d, v in zip(s.days, s.values, strict=True):
            if v is None:
                if run:
                    canvas.add(polyline(run, f"line s{i % 6}"))
                run = []
                continue
            run.append((x(d.toordinal()), y(transform(v))))
        if len(run) == 1:
            canvas.add(svg('<circle cx="{:.1f}" cy="{:.1f}" r="2.5" class="dot s{}"/>',
                           run[0][0], run[0][1], i % 6))
        elif run:
            canvas.add(polyline(run, f"line s{i % 6}"))
    for m in marks:
        px, py = x(m.day.toordinal()), y(transform(m.value))
        canvas.add(_mark(px, py, m.shape, m.cls, m.title))
    if keyed:
        canvas.add(_legend([s.name for s in series], canvas.left, 6))
    return canvas.render()


def _mark(x: float, y: float, shape: str, cls: str, title: str) -> Markup:
    if shape == "cross":
        d = f"M{x - 5:.1f},{y - 5:.1f}L{x + 5:.1f},{y + 5:.1f}M{x - 5:.1f},{y + 5:.1f}" \
            f"L{x + 5:.1f},{y - 5:.1f}"
    elif shape == "diamond":
        d = f"M{x:.1f},{y - 6:.1f}L{x + 6:.1f},{y:.1f}L{x:.1f},{y + 6:.1f}L{x - 6:.1f},{y:.1f}Z"
    else:
        return svg('<circle cx="{:.1f}" cy="{:.1f}" r="4.5" class="mark {}"><title>{}</title>'
                   "</circle>", x, y, cls, title)
    return svg('<path d="{}" class="mark {}"><title>{}</title></path>', d, cls, title)


def _legend(names: Sequence[str], x: float, y: float) -> Markup:
    """Keys in a row, left to right from (x, y)."""
    items = []
    for i, name in enumerate(names):
        items.append(svg('<rect x="{:.1f}" y="{:.1f}" width="12" height="3" class="key s{}"/>'
                         '<text x="{:.1f}" y="{:.1f}" class="tick" text-anchor="start">{}'
                         "</text>", x, y, i % 6, x + 17, y + 5, name))
        x += 17 + 6.5 * len(name) + 18
    return svg('<g class="legend">{}</g>', Markup("").join(items))


def reliability_chart(label: str, curves: Sequence[tuple[str, Sequence[Bin]]],
                      size: int = 360) -> Markup:
    """Realised win rate against stated probability per bin; the diagonal is honest.
    Point area follows the bin's count."""
    canvas = Canvas(size, label, width=size + 40, margin=(24, 16, 40, 56))
    axis = Scale(0.0, 1.0, canvas.left, canvas.right)
    up = Scale(0.0, 1.0, canvas.bottom, canvas.top)
    ticks = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    canvas.y_axis(up, ticks, "realised win rate")
    canvas.x_axis([(axis(t), _fmt(t)) for t in ticks], "stated probability")
    canvas.add(polyline([(axis(0), up(0)), (axis(1), up(1))], "diagonal"))
    biggest = max((b.n for _, bins in curves for b in bins), default=1) or 1
    for i, (_, bins) in enumerate(curves):
        ordered = sorted(bins, key=lambda b: b.predicted)
        canvas.add(polyline([(axis(b.predicted), up(b.realised)) for b in ordered],
                            f"line s{i % 6}"))
        for b in ordered:
            r = 2.5 + 5.5 * math.sqrt(b.n / biggest)
            canvas.add(svg('<circle cx="{:.1f}" cy="{:.1f}" r="{:.1f}" class="dot s{}"><title>'
                           "stated {:.3f}, realised {:.3f}, n = {:,}</title></circle>",
                           axis(b.predicted), up(b.realised), r, i % 6, b.predicted,
                           b.realised, b.n))
    canvas.add(_legend([name for name, _ in curves], canvas.left, 6))
    return canvas.render()


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    low: float | None = None
    high: float | None = None
    cls: str = "s0"
    title: str = ""


def bar_chart(label: str, bars: Sequence[Bar], *, x_label: str, row: int = 22) -> Markup:
    """Horizontal bars from zero, with optional interval whiskers; labels on the left."""
    if not bars:
        return empty(label, "no data yet")
    name_width = min(max(len(b.label) for b in bars) * 7 + 16, 300)
    height = len(bars) * row + 56
    canvas = Canvas(height, label, margin=(10, 24, 40, name_width))
    ends = [v for b in bars for v in (b.value, b.low, b.high) if v is not None]
    lo, hi = min(min(ends), 0.0), max(max(ends), 0.0)
    pad = (hi - lo) * 0.05 or 1.0
    x = Scale(lo - (pad if lo < 0 else 0), hi + (pad if hi > 0 else 0), canvas.left,
              canvas.right)
    for tick in nice_ticks(x.lo, x.hi, 6):
        px = x(tick)
        canvas.add(svg('<line x1="{:.1f}" x2="{:.1f}" y1="{:.1f}" y2="{:.1f}" class="grid"/>',
                       px, px, canvas.top, canvas.bottom))
    canvas.x_axis([(x(t), _fmt(t)) for t in nice_ticks(x.lo, x.hi, 6)], x_label)
    zero = x(0.0)
    for i, b in enumerate(bars):
        top = canvas.top + i * row + 4
        x0, x1 = sorted((zero, x(b.value)))
        canvas.text(canvas.left - 8, top + row / 2 + 1, b.label, anchor="end")
        canvas.add(svg('<rect x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{}" class="bar {}">'
                       "<title>{}</title></rect>", x0, top, max(x1 - x0, 1), row - 8, b.cls,
                       b.title or f"{b.label}: {b.value:.4g}"))
        if b.low is not None and b.high is not None:
            mid = top + (row - 8) / 2
            d = f"M{x(b.low):.1f},{mid:.1f}H{x(b.high):.1f}M{x(b.low):.1f},{mid - 4:.1f}v8" \
                f"M{x(b.high):.1f},{mid - 4:.1f}v8"
            canvas.add(svg('<path d="{}" class="whisker"/>', d))
    canvas.add(svg('<line x1="{:.1f}" x2="{:.1f}" y1="{:.1f}" y2="{:.1f}" class="axis"/>',
                   zero, zero, canvas.top, canvas.bottom))
    return canvas.render()
