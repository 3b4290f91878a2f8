"""Where a point in a Plotly chart's data coordinates is on the screen, for real clicks in browser tests."""

from __future__ import annotations

_TO_SCREEN = """(gd, [x, y]) => {
    const layout = gd._fullLayout, box = gd.getBoundingClientRect();
    return [box.left + layout.xaxis._offset + layout.xaxis.l2p(x),
            box.top + layout.yaxis._offset + layout.yaxis.l2p(y)];
}"""


def screen_xy(plot, x: float, y: float) -> tuple[float, float]:
    """``plot``: a Playwright locator of a ``.js-plotly-plot``; ``(x, y)``: data coordinates on its first axes."""
    return tuple(plot.evaluate(_TO_SCREEN, [float(x), float(y)]))
