"""Figures for activation geometry: the PCA scatter with direction arrows, explained variance, loadings.

The scatter draws every point with WebGL (``go.Scattergl``): 60,000 points
stay responsive. Each point carries ``customdata = [index, label, prediction]``
so a click can open that example; each unit in a loadings figure carries its
unit index for the same reason.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from ..analysis.geometry import Arrow, Loadings
from .common import reserved_margin, symmetric_range

#: One colour per class, or per region.
CATEGORY_COLORS = ["#1F77B4", "#FF7F0E", "#2CA02C", "#D62728", "#9467BD",
                   "#8C564B", "#E377C2", "#7F7F7F", "#BCBD22", "#17BECF"]
ARROW_COLORS = {"pc": "#444444", "logit": "#D62728", "fit": "#2CA02C", "template": "#9467BD"}
_POINT_HOVER = ("#%{customdata[0]}<br>label %{customdata[1]}, predicted %{customdata[2]}"
                "<br>(%{x:.3f}, %{y:.3f})")


def pca_scatter(
    xy: np.ndarray,
    customdata: np.ndarray,
    color: np.ndarray,
    color_title: str,
    category_names: Sequence[str] | None = None,
    arrows: Sequence[Arrow] = (),
    axis_titles: tuple[str, str] = ("PC1", "PC2"),
    title: str = "",
    height: int = 640,
) -> go.Figure:
    """Every point of a PCA plane, coloured by a category or a continuous value, with direction arrows.

    ``xy``: float ``[N, 2]`` scores; ``customdata``: int ``[N, 3]`` (index, label,
    prediction). ``color``: int ``[N]`` category codes when ``category_names`` is
    given (code ``c`` is named ``category_names[c]``), else float ``[N]`` values.
    """
    xy = np.asarray(xy, dtype=np.float32)
    customdata = np.asarray(customdata, dtype=np.int32)
    fig = go.Figure()
    marker = dict(size=3, opacity=0.6)
    if category_names is not None:
        for code, name in enumerate(category_names):
            keep = np.flatnonzero(color == code)
            fig.add_trace(go.Scattergl(
                x=xy[keep, 0], y=xy[keep, 1], customdata=customdata[keep], mode="markers", name=f"{name}",
                marker={**marker, "color": CATEGORY_COLORS[code % len(CATEGORY_COLORS)]},
                hovertemplate=f"{_POINT_HOVER}<extra>{name}</extra>",
            ))
        legend_title = color_title
    else:
        fig.add_trace(go.Scattergl(
            x=xy[:, 0], y=xy[:, 1], customdata=customdata, mode="markers", name="points",
            marker={**marker, "color": np.asarray(color, np.float32), "colorscale": "Viridis",
                    "colorbar": dict(title=color_title, thickness=12)},
            hovertemplate=f"{_POINT_HOVER}<br>{color_title} %{{marker.color:.4g}}<extra></extra>",
        ))
        legend_title = ""
    for arrow in arrows:
        _add_arrow(fig, arrow)
    # The legend or colour bar on the right is about as wide as its longest name (see reserved_margin).
    names = [legend_title, *(category_names or [])] if category_names is not None else [color_title]
    right = max(90, 45 + round(6.5 * max(len(str(name)) for name in names)))
    fig.update_layout(
        title=title, height=height, xaxis_title=axis_titles[0], yaxis_title=axis_titles[1],
        legend=dict(title=legend_title, itemsizing="constant"),
        margin=reserved_margin(title=bool(title), x_axis=True, y_axis=True, r=right),
        hovermode="closest", dragmode="zoom",
    )
    return fig


def _add_arrow(fig: go.Figure, arrow: Arrow) -> None:
    color = ARROW_COLORS.get(arrow.kind, "#000000")
    (x0, y0), (x1, y1) = arrow.start, arrow.end
    fig.add_annotation(x=x1, y=y1, ax=x0, ay=y0, xref="x", yref="y", axref="x", ayref="y", text="",
                       showarrow=True, arrowhead=2, arrowsize=1.2, arrowwidth=2.5, arrowcolor=color)
    fig.add_annotation(x=x1, y=y1, text=arrow.name, showarrow=False, xanchor="left", yanchor="bottom",
                       font=dict(color=color, size=12), bgcolor="rgba(255,255,255,0.7)")
    if arrow.kind == "template":
        # A template is a real input: mark its own point, as the write-up's big dots did.
        fig.add_trace(go.Scatter(x=[x1], y=[y1], mode="markers", name=arrow.name, showlegend=False,
                                 marker=dict(size=14, color=color, line=dict(color="white", width=2)),
                                 hovertemplate=f"{arrow.name}<br>(%{{x:.3f}}, %{{y:.3f}})<extra></extra>"))


def explained_variance_figure(ratio: np.ndarray, height: int = 260) -> go.Figure:
    """Bars of each component's share of the variance, with the running total as a line."""
    ratio = np.asarray(ratio, dtype=float)
    names = [f"PC{k + 1}" for k in range(len(ratio))]
    fig = go.Figure(go.Bar(x=names, y=100 * ratio, name="explained", marker_color="#4C78A8",
                           hovertemplate="%{x}: %{y:.2f}% of the variance<extra></extra>"))
    fig.add_trace(go.Scatter(x=names, y=100 * np.cumsum(ratio), name="cumulative", mode="lines+markers",
                             line=dict(color="#F58518"), hovertemplate="PC1..%{x}: %{y:.2f}%<extra></extra>"))
    fig.update_layout(yaxis_title="% of variance", yaxis_range=[0, 100], height=height,
                      margin=reserved_margin(title=False, y_axis=True, t=30, b=55),  # legend above, PCs below
                      legend=dict(orientation="h", y=1.1))
    return fig


def loadings_bars(loadings: Loadings, sort_by: int, top: int = 20, height: int | None = None) -> go.Figure:
    """The ``top`` units by |loading| on direction ``sort_by``, with every direction's loading side by side.

    One horizontal bar group per unit (largest first), one colour per direction;
    ``customdata`` is the unit, for click-through.
    """
    order = loadings.order(sort_by, absolute=True)[:top]
    labels = [loadings.coordinates[u] for u in order]
    fig = go.Figure()
    for d, name in enumerate(loadings.directions):
        fig.add_trace(go.Bar(
            y=labels, x=loadings.values[order, d], orientation="h", name=name,
            marker_color=CATEGORY_COLORS[d % len(CATEGORY_COLORS)], customdata=loadings.units[order],
            hovertemplate=f"unit %{{y}}<br>{name}: %{{x:.4g}}<extra></extra>",
        ))
    fig.update_layout(
        barmode="group", height=height or 120 + 22 * len(order) * max(1, min(len(loadings.directions), 3)),
        yaxis=dict(autorange="reversed", type="category", title="unit"),
        xaxis_title="std-weighted loading",
        margin=reserved_margin(x_axis=True, t=30, l=55 + round(6.5 * max((len(str(u)) for u in labels), default=0))),
        legend=dict(orientation="h", y=1.02, yanchor="bottom"),
    )
    return fig


def loadings_scatter(loadings: Loadings, x: int, y: int, label_top: int = 10, height: int = 480) -> go.Figure:
    """Each unit as a point at (its loading on direction ``x``, on direction ``y``).

    Groups of units show up as arms and clusters (the write-up's "top left" and
    "top right" neurons); the ``label_top`` units farthest from the origin are named.
    """
    values = loadings.values
    distance = np.hypot(values[:, x], values[:, y])
    named = np.argsort(-distance, kind="stable")[:label_top]
    text = np.array([""] * len(values), dtype=object)
    text[named] = [loadings.coordinates[u] for u in named]
    bound = symmetric_range(values[:, [x, y]])
    fig = go.Figure(go.Scatter(
        x=values[:, x], y=values[:, y], mode="markers+text", text=list(text), textposition="top center",
        customdata=loadings.units, marker=dict(size=8, color=distance, colorscale="Viridis", showscale=False),
        hovertext=list(loadings.coordinates),
        hovertemplate=f"unit %{{hovertext}}<br>{loadings.directions[x]}: %{{x:.4g}}"
                      f"<br>{loadings.directions[y]}: %{{y:.4g}}<extra></extra>",
    ))
    fig.add_hline(y=0, line_color="#bbbbbb")
    fig.add_vline(x=0, line_color="#bbbbbb")
    fig.update_layout(
        xaxis=dict(title=f"loading on {loadings.directions[x]}", range=[-1.1 * bound, 1.1 * bound]),
        yaxis=dict(title=f"loading on {loadings.directions[y]}", range=[-1.1 * bound, 1.1 * bound]),
        height=height, margin=reserved_margin(title=False, x_axis=True, y_axis=True),
    )
    return fig

