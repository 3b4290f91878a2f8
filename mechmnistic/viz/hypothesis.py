"""Figures for a hypothesis: the score histogram by model prediction, score against a PCA
component, and the causal-scrubbing sweep. Builders only: arrays in, ``go.Figure`` out."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from .common import legend_below_margin, reserved_margin

#: One colour per predicted class (Plotly's qualitative "D3" set, 10 colours).
CLASS_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
THRESHOLD_COLOR = "#222222"


def class_color(c: int) -> str:
    return CLASS_COLORS[c % len(CLASS_COLORS)]


def _threshold_lines(fig: go.Figure, thresholds: Sequence[float], vertical: bool = True) -> None:
    for value in thresholds:
        if vertical:
            fig.add_vline(x=value, line=dict(color=THRESHOLD_COLOR, dash="dash", width=1.5),
                          annotation_text=f"{value:.4g}", annotation_position="top")
        else:
            fig.add_hline(y=value, line=dict(color=THRESHOLD_COLOR, dash="dash", width=1.5))


def score_histogram_figure(
    centers: np.ndarray, counts: np.ndarray, thresholds: Sequence[float], title: str = "",
    score_label: str = "s(x)", height: int = 360,
) -> go.Figure:
    """Stacked histogram of scores, one colour per predicted class, thresholds as dashed lines.

    ``centers`` float ``[B]`` bin centres; ``counts`` int ``[C, B]`` per predicted class.
    """
    fig = go.Figure()
    width = float(centers[1] - centers[0]) if len(centers) > 1 else 1.0
    for c, row in enumerate(np.asarray(counts)):
        if row.sum() == 0:
            continue
        fig.add_trace(go.Bar(x=centers, y=row, width=width, name=f"predicted {c}", marker_color=class_color(c),
                             hovertemplate=f"predicted {c}<br>{score_label} ≈ %{{x:.4g}}<br>%{{y}} images"
                                           "<extra></extra>"))
    _threshold_lines(fig, thresholds)
    top = 50 if title else 20
    fig.update_layout(barmode="stack", bargap=0, title=title, height=height, xaxis_title=score_label,
                      yaxis_title="images", legend=dict(orientation="h", y=-0.2),
                      margin=reserved_margin(y_axis=True, t=top, b=legend_below_margin(height, top)))
    return fig


def score_scatter_figure(
    scores: np.ndarray, component: np.ndarray, predictions: np.ndarray, thresholds: Sequence[float],
    component_label: str, title: str = "", score_label: str = "s(x)", height: int = 420,
) -> go.Figure:
    """Score (x) against a PCA component (y) for every image (WebGL), coloured by predicted class."""
    fig = go.Figure()
    for c in np.unique(predictions):
        here = predictions == c
        fig.add_trace(go.Scattergl(
            x=scores[here], y=component[here], mode="markers", name=f"predicted {int(c)}",
            marker=dict(size=3, color=class_color(int(c)), opacity=0.5),
            hovertemplate=f"predicted {int(c)}<br>{score_label} %{{x:.4g}}<br>{component_label} %{{y:.4g}}"
                          "<extra></extra>"))
    _threshold_lines(fig, thresholds)
    top = 50 if title else 20
    fig.update_layout(title=title, height=height, xaxis_title=score_label, yaxis_title=component_label,
                      legend=dict(orientation="h", y=-0.2, itemsizing="constant"),
                      margin=reserved_margin(y_axis=True, t=top, b=legend_below_margin(height, top)))
    return fig


def scrub_sweep_figure(
    tolerances: np.ndarray, preserved: np.ndarray, random_baseline: float, agreement: float | None = None,
    title: str = "", height: int = 360,
) -> go.Figure:
    """Fraction of predictions preserved against tolerance (log axis), with the random baseline.

    ``agreement``: the hypothesis's own agreement with the model, drawn as a
    reference (a scrubbed model rarely beats the hypothesis it tests).
    """
    tolerances = np.asarray(tolerances, dtype=float)
    fig = go.Figure(go.Scatter(
        x=tolerances, y=preserved, mode="lines+markers", name="scrubbed as the hypothesis allows",
        marker=dict(size=9), hovertemplate="tolerance %{x:.3g}<br>preserved %{y:.2%}<extra></extra>"))
    fig.add_hline(y=random_baseline, line=dict(color="#d62728", dash="dot"),
                  annotation_text=f"every group from random images: {random_baseline:.1%}",
                  annotation_position="bottom right")
    if agreement is not None:
        fig.add_hline(y=agreement, line=dict(color="#2ca02c", dash="dash"),
                      annotation_text=f"hypothesis agrees with the model: {agreement:.1%}",
                      annotation_position="top left")
    log = bool((tolerances > 0).all())
    fig.update_xaxes(type="log" if log else "linear", title="tolerance (fraction of the score range)",
                     tickvals=tolerances, ticktext=[f"{t:g}" for t in tolerances])
    fig.update_yaxes(title="model predictions preserved", range=[0, 1.02], tickformat=".0%")
    fig.update_layout(title=title, height=height, showlegend=False,
                      margin=reserved_margin(x_axis=True, y_axis=True, t=50 if title else 20))
    return fig
