"""Bar charts of one unit's connections: weights from or to other units, or what each source contributed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import plotly.graph_objects as go

from .common import reserved_margin

POSITIVE, NEGATIVE = "#b2182b", "#2166ac"


def _ranked(values: np.ndarray, labels: Sequence[str], value_title: str, top: int | None,
            order: Literal["magnitude", "value", "index"], customdata: np.ndarray | None) -> tuple[go.Bar, list[str]]:
    """The bar trace of ``ranked_bar`` and its labels, top first."""
    values = np.asarray(values, dtype=float)
    key = {"magnitude": -np.abs(values), "value": -values, "index": np.arange(len(values))}[order]
    keep = np.argsort(key, kind="stable")[: top if top is not None else len(values)]
    names = [str(labels[i]) for i in keep]
    bar = go.Bar(
        x=values[keep], y=names, orientation="h", marker_color=[POSITIVE if v >= 0 else NEGATIVE for v in values[keep]],
        customdata=None if customdata is None else np.asarray(customdata)[keep], showlegend=False,
        hovertemplate=f"%{{y}}<br>{value_title} %{{x:.4g}}<extra></extra>",
    )
    return bar, names


def _label_room(names: Sequence[str]) -> int:
    # Room for the longest label (up to 6.5 px a character at Plotly's 12 px font) and the x axis, so that
    # Plotly draws the chart once instead of growing the margins and drawing it again (see reserved_margin).
    return 15 + round(6.5 * max((len(name) for name in names), default=0))


def ranked_bar(
    values: np.ndarray,
    labels: Sequence[str],
    title: str,
    value_title: str,
    top: int | None = 20,
    order: Literal["magnitude", "value", "index"] = "magnitude",
    customdata: np.ndarray | None = None,
) -> go.Figure:
    """Horizontal bars, first entry at the top, coloured by sign (red positive, blue negative).

    ``values`` float ``[K]`` with ``labels[K]``; ``order``: by magnitude
    (what moves the unit most), by signed value (most positive first) or as
    given (``index``).
    ``top``: keep this many (``None``: all). ``customdata`` ``[K, ...]`` rides
    along per bar, so a page can open the unit behind a clicked bar.
    """
    bar, names = _ranked(values, labels, value_title, top, order, customdata)
    fig = go.Figure(bar)
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_layout(title=title, xaxis_title=value_title, height=max(220, 22 * len(names) + 80),
                      margin={**reserved_margin(x_axis=True, left=_label_room(names)), "r": 20})  # last tick overhangs
    return fig


def ranked_bar_pair(
    values: tuple[np.ndarray, np.ndarray],
    labels: Sequence[str],
    titles: tuple[str, str],
    value_title: str,
    top: int | None = 20,
    order: Literal["magnitude", "value", "index"] = "magnitude",
) -> go.Figure:
    """Two ``ranked_bar`` charts over the same ``labels`` side by side in one figure (one chart for the
    browser to draw instead of two); each bar's ``customdata`` is its index into ``labels``."""
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=titles, horizontal_spacing=0.12)
    names = []
    for column, series in enumerate(values, start=1):
        bar, shown = _ranked(series, labels, value_title, top, order, np.arange(len(series)))
        names += shown
        fig.add_trace(bar, row=1, col=column)
        fig.update_yaxes(autorange="reversed", type="category", row=1, col=column)
        fig.update_xaxes(title_text=value_title, row=1, col=column)
    rows = max(len(names) // 2, 1)
    fig.update_layout(height=max(220, 22 * rows + 80),
                      margin={**reserved_margin(x_axis=True, left=_label_room(names)), "r": 20})
    return fig
