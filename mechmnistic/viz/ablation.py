"""Figures for direct logit attribution and ablations. Builders only: arrays in, ``go.Figure`` out."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from .common import legend_below_margin, reserved_margin

#: Group colours: dead units grey, then distinct colours (green and orange first, as in the EIS VII write-up).
GROUP_COLORS = ["#2ca02c", "#ff7f0e", "#1f77b4", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]
DEAD_COLOR = "#b0b0b0"


def group_colors(names: Sequence[str]) -> list[str]:
    """One colour per group name, the same in every figure: grey for dead and leftover units."""
    colors, position = [], 0
    for name in names:
        if name in ("dead", "other units"):
            colors.append(DEAD_COLOR)
        else:
            colors.append(GROUP_COLORS[position % len(GROUP_COLORS)])
            position += 1
    return colors


def dla_stacked_figure(
    contributions: np.ndarray, group_names: Sequence[str], bias: float, labels: Sequence[str],
    target_name: str, title: str = "", height: int = 420,
) -> go.Figure:
    """One stacked bar per image: each group's contribution; a black dot marks the target itself.

    ``contributions`` float ``[N, G]`` in bar order; ``labels`` names each bar
    (e.g. ``test 17``). The dot is ``row sum + bias``: segments above and below
    zero net out, plus the bias line, to the dot.
    """
    contributions = np.asarray(contributions, dtype=float)
    x = list(range(len(contributions)))
    fig = go.Figure()
    for g, (name, color) in enumerate(zip(group_names, group_colors(group_names), strict=True)):
        fig.add_trace(go.Bar(x=x, y=contributions[:, g], name=name, marker_color=color, customdata=list(labels),
                             hovertemplate=f"%{{customdata}}<br>{name}: %{{y:.3f}}<extra></extra>"))
    fig.add_trace(go.Scatter(x=x, y=contributions.sum(axis=1) + bias, mode="markers", name=target_name,
                             marker=dict(color="black", size=5), customdata=list(labels),
                             hovertemplate=f"%{{customdata}}<br>{target_name}: %{{y:.3f}}<extra></extra>"))
    fig.add_hline(y=bias, line=dict(color="#555", dash="dot", width=1), annotation_text=f"bias {bias:.3f}",
                  annotation_position="bottom left")
    top = 50 if title else 20
    fig.update_layout(barmode="relative", bargap=0.05, title=title, height=height,
                      xaxis=dict(title="images, sorted", showticklabels=False),
                      yaxis_title=f"contribution to {target_name}", legend=dict(orientation="h", y=-0.15),
                      margin=reserved_margin(y_axis=True, t=top, b=legend_below_margin(height, top, 0.15)))
    return fig


def dla_example_figure(
    contributions: np.ndarray, group_names: Sequence[str], bias: float, target_name: str, title: str = "",
    height: int = 320,
) -> go.Figure:
    """One image: a bar per group, then the bias, then the target (their sum)."""
    values = [*np.asarray(contributions, dtype=float).tolist(), float(bias)]
    names = [*group_names, "bias"]
    total = float(sum(values))
    colors = group_colors(group_names) + ["#555555", "black"]
    fig = go.Figure(go.Bar(x=[*names, target_name], y=[*values, total], marker_color=colors,
                           hovertemplate="%{x}: %{y:.4f}<extra></extra>"))
    fig.update_layout(title=title, height=height, yaxis_title="contribution", xaxis=dict(type="category"),
                      margin=reserved_margin(y_axis=True, t=50 if title else 20, b=40))  # x: tick labels only
    return fig


def intervention_figure(
    names: Sequence[str], fraction_changed: Sequence[float], accuracy_before: Sequence[float | None],
    accuracy_after: Sequence[float | None], title: str = "", height: int = 340,
) -> go.Figure:
    """Per breakdown group: fraction of predictions changed, and accuracy before and after."""
    fig = go.Figure()
    fig.add_trace(go.Bar(x=list(names), y=list(fraction_changed), name="predictions changed",
                         marker_color="#d62728", hovertemplate="%{x}<br>changed %{y:.1%}<extra></extra>"))
    if any(a is not None for a in accuracy_before):
        fig.add_trace(go.Bar(x=list(names), y=[np.nan if a is None else a for a in accuracy_before],
                             name="accuracy before", marker_color="#9ecae1",
                             hovertemplate="%{x}<br>accuracy before %{y:.1%}<extra></extra>"))
        fig.add_trace(go.Bar(x=list(names), y=[np.nan if a is None else a for a in accuracy_after],
                             name="accuracy after", marker_color="#08519c",
                             hovertemplate="%{x}<br>accuracy after %{y:.1%}<extra></extra>"))
    top = 50 if title else 20
    fig.update_layout(barmode="group", title=title, height=height, yaxis=dict(range=[0, 1.02], tickformat=".0%"),
                      xaxis=dict(type="category"), legend=dict(orientation="h", y=-0.2),
                      margin=reserved_margin(l=60, t=top, b=legend_below_margin(height, top)))  # y: percentages
    return fig
