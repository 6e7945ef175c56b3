"""Small inline SVG charts for the report: a histogram of the per-utterance improvements
and a scatter of noisy against enhanced scores (above the diagonal: improved). Pure
functions from numbers to markup; no script, no plotting library."""

import math
from html import escape

WIDTH, HEIGHT = 300, 190
LEFT, RIGHT, TOP, BOTTOM = 38, 10, 12, 30
UP, DOWN, NEUTRAL, INK = "#2e7d32", "#c62828", "#90a4ae", "#444"


def _fmt(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"


def _frame(inner: str, title: str, x_label: str, y_label: str) -> str:
    return (f'<svg class=chart width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
            f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
            f'<line x1="{LEFT}" y1="{HEIGHT - BOTTOM}" x2="{WIDTH - RIGHT}" y2="{HEIGHT - BOTTOM}" stroke="{INK}"/>'
            f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{HEIGHT - BOTTOM}" stroke="{INK}"/>{inner}'
            f'<text x="{(LEFT + WIDTH - RIGHT) / 2}" y="{HEIGHT - 4}" text-anchor="middle" class=axis>{escape(x_label)}</text>'
            f'<text x="10" y="{(TOP + HEIGHT - BOTTOM) / 2}" text-anchor="middle" class=axis '
            f'transform="rotate(-90 10 {(TOP + HEIGHT - BOTTOM) / 2})">{escape(y_label)}</text></svg>')


def _empty(title: str) -> str:
    return (f'<svg class=chart width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{escape(title)}">'
            f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" class=axis>no values</text></svg>')


def histogram(deltas: list[float], title: str, unit: str = "") -> str:
    """Improvements binned around zero: bars right of the zero line are improvements."""
    values = [d for d in deltas if d is not None and math.isfinite(d)]
    if not values:
        return _empty(title)
    low, high = min(min(values), 0.0), max(max(values), 0.0)
    if high - low < 1e-12:
        low, high = low - 1.0, high + 1.0
    # Bin edges at multiples of the width from zero, so that no bar mixes better and worse.
    width = (high - low) / max(6, min(20, int(math.sqrt(len(values))) * 2))
    first = math.floor(low / width)
    bins = max(1, math.ceil(high / width) - first)  # the largest value joins the last bin
    low, high = first * width, (first + bins) * width
    counts, positive = [0] * bins, [False] * bins
    for v in values:
        k = min(bins - 1, int(math.floor(v / width)) - first)
        counts[k] += 1
        positive[k] |= v > 0
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    tallest = max(counts)
    bars = []
    for i, count in enumerate(counts):
        if not count:
            continue
        x0 = low + i * width
        colour = DOWN if x0 < 0 else UP if positive[i] else NEUTRAL  # grey: exactly unchanged
        h = plot_h * count / tallest
        bars.append(f'<rect x="{LEFT + plot_w * i / bins + 0.5:.1f}" y="{TOP + plot_h - h:.1f}" '
                    f'width="{max(plot_w / bins - 1, 1):.1f}" height="{h:.1f}" fill="{colour}">'
                    f'<title>{_fmt(x0)} to {_fmt(x0 + width)}: {count}</title></rect>')
    zero = LEFT + plot_w * (0 - low) / (high - low)
    # The ends are labelled unless they would overlap the zero's label.
    low_label = (f'<text x="{LEFT}" y="{HEIGHT - BOTTOM + 12}" class=tick>{_fmt(low)}</text>'
                 if zero - LEFT > 45 else "")
    high_label = (f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - BOTTOM + 12}" text-anchor="end" class=tick>{_fmt(high)}</text>'
                  if WIDTH - RIGHT - zero > 45 else "")
    ticks = (f'<line x1="{zero:.1f}" y1="{TOP}" x2="{zero:.1f}" y2="{HEIGHT - BOTTOM}" stroke="{INK}" '
             f'stroke-dasharray="3,2"/>{low_label}{high_label}'
             f'<text x="{zero:.1f}" y="{HEIGHT - BOTTOM + 12}" text-anchor="middle" class=tick>0</text>'
             f'<text x="{LEFT - 3}" y="{TOP + 8}" text-anchor="end" class=tick>{tallest}</text>'
             f'<text x="{LEFT - 3}" y="{HEIGHT - BOTTOM}" text-anchor="end" class=tick>0</text>')
    return _frame("".join(bars) + ticks, title, f"improvement{unit}", "utterances")


def scatter(noisy: list[float], enhanced: list[float], title: str, unit: str = "") -> str:
    """Enhanced (y) against noisy (x) on equal axes with the diagonal: points above it improved."""
    points = [(x, y) for x, y in zip(noisy, enhanced)
              if x is not None and y is not None and math.isfinite(x) and math.isfinite(y)]
    if not points:
        return _empty(title)
    low = min(min(p) for p in points)
    high = max(max(p) for p in points)
    pad = (high - low) * 0.05 or 0.5
    low, high = low - pad, high + pad
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def at(x, y):
        return LEFT + plot_w * (x - low) / (high - low), TOP + plot_h * (1 - (y - low) / (high - low))

    (x0, y0), (x1, y1) = at(low, low), at(high, high)
    dots = "".join(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="2.6" fill="{UP if y > x else DOWN if y < x else NEUTRAL}" '
                   f'fill-opacity="0.75"/>' for (x, y) in points for cx, cy in [at(x, y)])
    ticks = (f'<line x1="{x0:.1f}" y1="{y0:.1f}" x2="{x1:.1f}" y2="{y1:.1f}" stroke="{INK}" stroke-dasharray="3,2"/>'
             f'<text x="{LEFT}" y="{HEIGHT - BOTTOM + 12}" class=tick>{_fmt(low)}</text>'
             f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - BOTTOM + 12}" text-anchor="end" class=tick>{_fmt(high)}</text>'
             f'<text x="{LEFT - 3}" y="{TOP + 8}" text-anchor="end" class=tick>{_fmt(high)}</text>'
             f'<text x="{LEFT - 3}" y="{HEIGHT - BOTTOM}" text-anchor="end" class=tick>{_fmt(low)}</text>')
    return _frame(dots + ticks, title, f"noisy{unit}", f"enhanced{unit}")
