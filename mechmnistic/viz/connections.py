"""Bar charts of one unit's connections: weights from or to other units, or what each source contributed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import plotly.graph_objects as go

from .common import reserved_margin

POSITIVE, NEGATIVE = "#b2182b", "#2166ac"


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
    values = np.asarray(values, dtype=float)
    key = {"magnitude": -np.abs(values), "value": -values, "index": np.arange(len(values))}[order]
    keep = np.argsort(key, kind="stable")[: top if top is not None else len(values)]
    names = [str(labels[i]) for i in keep]
    bar = go.Bar(
        x=values[keep], y=names, orientation="h", marker_color=[POSITIVE if v >= 0 else NEGATIVE for v in values[keep]],
        customdata=None if customdata is None else np.asarray(customdata)[keep],
        hovertemplate=f"%{{y}}<br>{value_title} %{{x:.4g}}<extra></extra>",
    )
    fig = go.Figure(bar)
    fig.update_yaxes(autorange="reversed", type="category")
    # Room for the longest label (up to 6.5 px a character at Plotly's 12 px font) and the x axis, so that
    # Plotly draws the chart once instead of growing the margins and drawing it again (see reserved_margin).
    left = 15 + round(6.5 * max((len(name) for name in names), default=0))
    fig.update_layout(title=title, xaxis_title=value_title, height=max(220, 22 * len(keep) + 80),
                      margin={**reserved_margin(x_axis=True, left=left), "r": 20})  # the last tick label overhangs
    return fig
