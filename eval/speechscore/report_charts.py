"""Small inline SVG charts for the report: a histogram of the per-utterance improvements,
a scatter of noisy against enhanced scores (above the diagonal: improved) and a scatter of
the improvement against the input's SNR. Pure functions from numbers to markup; no
script, no plotting library.

Every axis has "nice" ticks: a step of 1, 2 or 5 times a power of ten, 4 to 7 of them,
with the axis widened to the first and last tick. Each axis's ticks sit in a
`<g class="ticks x|y" data-step=...>` so that a reader (or a test) can find them."""

import math
from html import escape

WIDTH, HEIGHT = 300, 190
LEFT, RIGHT, TOP, BOTTOM = 40, 10, 12, 30
UP, DOWN, NEUTRAL, INK, GRID = "#2e7d32", "#c62828", "#90a4ae", "#444", "#e3e3e3"
MIN_TICKS, MAX_TICKS = 4, 7


def nice_ticks(low: float, high: float, integer: bool = False) -> list[float]:
    """4 to 7 evenly spaced values covering [low, high], a step of 1, 2 or 5 x 10^k
    (at least 1 when `integer`), the first at or below low and the last at or above high.
    Of the steps that give 4 to 7 ticks, the one closest to 5 ticks wins."""
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError("ticks need finite bounds")
    if high < low:
        low, high = high, low
    if high - low < 1e-12:
        pad = max(abs(low) * 0.1, 1.0 if integer else 0.5)
        low, high = low - pad, high + pad
    exponent = math.floor(math.log10(high - low)) - 2
    best = None
    for k in range(exponent, exponent + 4):
        for mantissa in (1, 2, 5):
            step = mantissa * 10.0 ** k
            if integer and step < 1:
                continue
            first, last = math.floor(low / step + 1e-9), math.ceil(high / step - 1e-9)
            count = last - first + 1
            if MIN_TICKS <= count <= MAX_TICKS and (best is None or abs(count - 5) < abs(best[0] - 5)):
                best = (count, step, first)
    if best is None:  # only an integer axis over a tiny range: 0, 1, 2, 3 from its floor
        best = (MIN_TICKS, 1.0, math.floor(low))
    count, step, first = best
    return [_clean(step * (first + i), step) for i in range(count)]


def _clean(value: float, step: float) -> float:
    """A tick value without floating-point dust (0.30000000000000004 -> 0.3)."""
    digits = max(0, -math.floor(math.log10(step)) + 1)
    value = round(value, digits)
    return 0.0 if value == 0 else value


def tick_label(value: float, step: float) -> str:
    digits = max(0, -math.floor(math.log10(step) + 1e-9))
    return f"{value:.{digits}f}".replace("-", "−")


class _Axes:
    """Maps data to the plot area of one chart from its x and y ticks."""

    def __init__(self, x_ticks: list[float], y_ticks: list[float]):
        self.x_ticks, self.y_ticks = x_ticks, y_ticks
        self.w, self.h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(self, value: float) -> float:
        low, high = self.x_ticks[0], self.x_ticks[-1]
        return LEFT + self.w * (value - low) / (high - low)

    def y(self, value: float) -> float:
        low, high = self.y_ticks[0], self.y_ticks[-1]
        return TOP + self.h * (1 - (value - low) / (high - low))

    def markup(self) -> str:
        """Grid lines, tick marks and labels of both axes."""
        parts = []
        step = self.x_ticks[1] - self.x_ticks[0]
        parts.append(f'<g class="ticks x" data-step="{step:g}">')
        for t in self.x_ticks:
            x = self.x(t)
            parts.append(f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{HEIGHT - BOTTOM}" stroke="{GRID}"/>'
                         f'<line x1="{x:.1f}" y1="{HEIGHT - BOTTOM}" x2="{x:.1f}" y2="{HEIGHT - BOTTOM + 3}" stroke="{INK}"/>'
                         f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 13}" text-anchor="middle" class=tick '
                         f'data-value="{t:g}">{tick_label(t, step)}</text>')
        parts.append("</g>")
        step = self.y_ticks[1] - self.y_ticks[0]
        parts.append(f'<g class="ticks y" data-step="{step:g}">')
        for t in self.y_ticks:
            y = self.y(t)
            parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="{GRID}"/>'
                         f'<line x1="{LEFT - 3}" y1="{y:.1f}" x2="{LEFT}" y2="{y:.1f}" stroke="{INK}"/>'
                         f'<text x="{LEFT - 5}" y="{y + 3.5:.1f}" text-anchor="end" class=tick '
                         f'data-value="{t:g}">{tick_label(t, step)}</text>')
        parts.append("</g>")
        return "".join(parts)


def _frame(axes: _Axes, inner: str, title: str, x_label: str, y_label: str, kind: str) -> str:
    middle = (TOP + HEIGHT - BOTTOM) / 2
    return (f'<svg class=chart data-kind="{kind}" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" '
            f'role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>{axes.markup()}'
            f'<line x1="{LEFT}" y1="{HEIGHT - BOTTOM}" x2="{WIDTH - RIGHT}" y2="{HEIGHT - BOTTOM}" stroke="{INK}"/>'
            f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{HEIGHT - BOTTOM}" stroke="{INK}"/>{inner}'
            f'<text x="{(LEFT + WIDTH - RIGHT) / 2}" y="{HEIGHT - 3}" text-anchor="middle" class=axis>{escape(x_label)}</text>'
            f'<text x="9" y="{middle}" text-anchor="middle" class=axis '
            f'transform="rotate(-90 9 {middle})">{escape(y_label)}</text></svg>')


def _empty(title: str, kind: str) -> str:
    return (f'<svg class="chart empty" data-kind="{kind}" width="{WIDTH}" height="{HEIGHT}" role="img" '
            f'aria-label="{escape(title)}"><text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" '
            f'class=axis>no values</text></svg>')


def _finite(values) -> list[float]:
    return [v for v in values if v is not None and math.isfinite(v)]


def histogram(deltas: list[float], title: str, unit: str = "") -> str:
    """Improvements binned around zero: bars right of the zero line are improvements."""
    values = _finite(deltas)
    if not values:
        return _empty(title, "histogram")
    x_ticks = nice_ticks(min(min(values), 0.0), max(max(values), 0.0))
    step = x_ticks[1] - x_ticks[0]
    low, high = x_ticks[0], x_ticks[-1]
    # Bins a fraction of the tick step, edges at multiples of the width from zero, so
    # that no bar mixes better and worse and the ticks fall on bin edges.
    per_tick = next((k for k in (1, 2, 4, 5, 10) if (high - low) / (step / k) >= min(20, max(6, 2 * len(values) ** 0.5))), 10)
    width = step / per_tick
    bins = max(1, round((high - low) / width))
    counts, positive = [0] * bins, [False] * bins
    for v in values:
        k = min(bins - 1, max(0, int(math.floor((v - low) / width + 1e-9))))
        counts[k] += 1
        positive[k] |= v > 0
    tallest = max(counts)
    axes = _Axes(x_ticks, nice_ticks(0, max(tallest, 3), integer=True))
    bars = []
    for i, count in enumerate(counts):
        if not count:
            continue
        x0 = low + i * width
        colour = DOWN if x0 < -1e-12 else UP if positive[i] else NEUTRAL  # grey: exactly unchanged
        left, right, top = axes.x(x0), axes.x(x0 + width), axes.y(count)
        bars.append(f'<rect x="{left + 0.5:.1f}" y="{top:.1f}" width="{max(right - left - 1, 1):.1f}" '
                    f'height="{HEIGHT - BOTTOM - top:.1f}" fill="{colour}">'
                    f'<title>{x0:.4g} to {x0 + width:.4g}: {count}</title></rect>')
    zero = axes.x(0.0)
    line = f'<line x1="{zero:.1f}" y1="{TOP}" x2="{zero:.1f}" y2="{HEIGHT - BOTTOM}" stroke="{INK}" stroke-dasharray="3,2"/>'
    return _frame(axes, "".join(bars) + line, title, f"improvement{unit}", "utterances", "histogram")


def scatter(noisy: list[float], enhanced: list[float], title: str, unit: str = "") -> str:
    """Enhanced (y) against noisy (x) on equal axes with the diagonal: points above it improved."""
    points = [(x, y) for x, y in zip(noisy, enhanced)
              if x is not None and y is not None and math.isfinite(x) and math.isfinite(y)]
    if not points:
        return _empty(title, "scatter")
    ticks = nice_ticks(min(min(p) for p in points), max(max(p) for p in points))
    axes = _Axes(ticks, ticks)
    low, high = ticks[0], ticks[-1]
    dots = "".join(f'<circle cx="{axes.x(x):.1f}" cy="{axes.y(y):.1f}" r="2.6" '
                   f'fill="{UP if y > x else DOWN if y < x else NEUTRAL}" fill-opacity="0.75"/>' for x, y in points)
    diagonal = (f'<line x1="{axes.x(low):.1f}" y1="{axes.y(low):.1f}" x2="{axes.x(high):.1f}" y2="{axes.y(high):.1f}" '
                f'stroke="{INK}" stroke-dasharray="3,2"/>')
    return _frame(axes, diagonal + dots, title, f"noisy{unit}", f"enhanced{unit}", "scatter")


def against_snr(snrs: list[float], deltas: list[float], title: str, unit: str = "", x_label: str = "input SNR (dB)") -> str:
    """The improvement (y) of each utterance against its input SNR (x), with the zero line:
    points below it got worse."""
    points = [(x, y) for x, y in zip(snrs, deltas)
              if x is not None and y is not None and math.isfinite(x) and math.isfinite(y)]
    if not points:
        return _empty(title, "snr")
    axes = _Axes(nice_ticks(min(p[0] for p in points), max(p[0] for p in points)),
                 nice_ticks(min(min(p[1] for p in points), 0.0), max(max(p[1] for p in points), 0.0)))
    zero = axes.y(0.0)
    line = (f'<line x1="{LEFT}" y1="{zero:.1f}" x2="{WIDTH - RIGHT}" y2="{zero:.1f}" stroke="{INK}" '
            f'stroke-dasharray="3,2"/>')
    dots = "".join(f'<circle cx="{axes.x(x):.1f}" cy="{axes.y(y):.1f}" r="2.6" '
                   f'fill="{UP if y > 0 else DOWN if y < 0 else NEUTRAL}" fill-opacity="0.75"/>' for x, y in points)
    return _frame(axes, line + dots, title, x_label, f"improvement{unit}", "snr")
