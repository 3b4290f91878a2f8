"""Figures of the Dictionaries page: a sweep's Pareto plot and the polysemanticity scoreboard's histograms."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .common import legend_below_margin, reserved_margin

NEURON_COLOUR, LATENT_COLOUR, FRONT_COLOUR = "#636efa", "#ef553b", "#f4a300"


def pareto_figure(ids: Sequence[str], l0: np.ndarray, variance_explained: np.ndarray,
                  spliced_accuracy: np.ndarray, front: np.ndarray, model_accuracy: float | None,
                  height: int = 380) -> go.Figure:
    """Dictionaries of one layer (``P`` of them, float ``[P]`` each): L0 against variance explained and against
    the spliced model's accuracy; the Pareto front of the first (bool ``[P]``) joined by a line; the model's own
    accuracy as a dashed line on the second."""
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.12,
                        subplot_titles=("Variance explained (test set)", "Spliced accuracy (test set)"))
    order = np.argsort(l0, kind="stable")
    on_front = order[front[order]]
    hover = "%{text}<br>L0 %{x:.2f}<br>%{y:.4f}<extra></extra>"
    fig.add_trace(go.Scatter(x=l0[on_front], y=variance_explained[on_front], mode="lines", name="Pareto front",
                             line=dict(color=FRONT_COLOUR, width=2), hoverinfo="skip"), row=1, col=1)
    # Only the front is labelled: dictionaries of one k share an L0, and their labels would pile up (hover names
    # every point).
    labels = [name if keep else "" for name, keep in zip(ids, front, strict=True)]
    for column, values in ((1, variance_explained), (2, spliced_accuracy)):
        fig.add_trace(go.Scatter(x=l0, y=values, mode="markers+text", text=labels, customdata=list(ids),
                                 textposition="top center",
                                 marker=dict(size=10, color=np.where(front, FRONT_COLOUR, "#7f7f7f")),
                                 hovertemplate=hover.replace("%{text}", "%{customdata}"), showlegend=False,
                                 cliponaxis=False), row=1, col=column)
    if model_accuracy is not None:
        fig.add_hline(y=model_accuracy, line=dict(dash="dash", color="#444"), row=1, col=2,
                      annotation_text=f"model {100 * model_accuracy:.2f}%", annotation_position="bottom left")
    finite = l0[np.isfinite(l0) & (l0 > 0)]
    ticks = [2.0**p for p in range(int(np.floor(np.log2(finite.min()))), int(np.ceil(np.log2(finite.max()))) + 1)] \
        if len(finite) else None
    fig.update_xaxes(title_text="L0 (latents active per input)", type="log", tickvals=ticks,
                     ticktext=None if ticks is None else [f"{t:g}" for t in ticks])
    fig.update_yaxes(title_text="variance explained", row=1, col=1)
    fig.update_yaxes(title_text="accuracy", tickformat=".1%", row=1, col=2)
    fig.update_layout(height=height, margin=reserved_margin(x_axis=True, y_axis=True, t=60), showlegend=False)
    return fig


def _shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    counts, _ = np.histogram(values, bins=edges)
    return 100 * counts / max(len(values), 1)


def scoreboard_figure(entropies: Sequence[np.ndarray], clusters: Sequence[np.ndarray], names: Sequence[str],
                      max_bits: float, height: int = 360) -> go.Figure:
    """Side-by-side histograms, one bar colour per basis (``names``, e.g. neurons and a dictionary's latents):
    the label entropy in bits of each unit's firing top examples (float ``[U_b]`` per basis, units that fire
    only) and its number of feature clusters (int ``[U_b]``), as a share of the basis's units."""
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1,
                        subplot_titles=("Label entropy of the top examples (bits; 0 = one digit)",
                                        "Feature clusters among the top examples"))
    bits = np.linspace(0, max_bits, 13)
    most = max([int(c.max()) for c in clusters if len(c)] + [1])
    whole = np.arange(0.5, most + 1.5)
    for index, (entropy, count, name) in enumerate(zip(entropies, clusters, names, strict=True)):
        colour = NEURON_COLOUR if index == 0 else LATENT_COLOUR
        fig.add_trace(go.Bar(x=(bits[:-1] + bits[1:]) / 2, y=_shares(entropy, bits), name=name,
                             marker_color=colour, width=(bits[1] - bits[0]) / (len(names) + 0.5),
                             hovertemplate=f"{name}<br>%{{x:.2f}} bits<br>%{{y:.1f}}% of units<extra></extra>"),
                      row=1, col=1)
        fig.add_trace(go.Bar(x=np.arange(1, most + 1), y=_shares(count, whole), name=name, marker_color=colour,
                             showlegend=False,
                             hovertemplate=f"{name}<br>%{{x}} clusters<br>%{{y:.1f}}% of units<extra></extra>"),
                      row=1, col=2)
    fig.update_xaxes(title_text="bits", row=1, col=1)
    fig.update_xaxes(title_text="clusters", dtick=1, row=1, col=2)
    fig.update_yaxes(title_text="% of units that fire", row=1, col=1)
    top = 60
    fig.update_layout(barmode="group", height=height, legend=dict(orientation="h", y=-0.25),
                      margin=reserved_margin(x_axis=True, y_axis=True, t=top, b=legend_below_margin(height, top,
                                                                                                   0.25)))
    return fig
