"""Figures for one unit: its weights, its activation distribution, its top examples and feature clusters.

Arrays in (from ``mechmnistic.analysis.unit_behaviour``/``atlas``), ``go.Figure`` out.
Signed maps (weights, Hadamard embeddings) are on a diverging scale centred
at zero; digits are greys with ink dark.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from .common import MosaicBand, class_bar, image_mosaic, reserved_margin, signed_heatmap

_POSITIVE, _NEGATIVE, _SILENT = "#b2182b", "#2166ac", "#9e9e9e"


def _signed_bars(values: np.ndarray, title: str, xaxis_title: str, yaxis_title: str, height: int) -> go.Figure:
    """One bar per unit (numbered from 0), red positive and blue negative."""
    values = np.asarray(values, dtype=float)
    fig = go.Figure(go.Bar(
        x=np.arange(len(values)), y=values, marker_color=np.where(values >= 0, _POSITIVE, _NEGATIVE).tolist(),
        hovertemplate=f"{xaxis_title} %{{x}}<br>{yaxis_title} %{{y:.4g}}<extra></extra>",
    ))
    fig.update_layout(title=title, xaxis_title=xaxis_title, yaxis_title=yaxis_title, height=height,
                      margin=reserved_margin(x_axis=True, y_axis=True), bargap=0.1)
    return fig


def input_weights_figure(weights: np.ndarray, source: str, height: int = 320) -> go.Figure:
    """``weights``: float ``[28, 28]`` pixel-space weights, or ``[in_units]`` weights from layer ``source``."""
    if np.ndim(weights) == 2:
        return signed_heatmap(weights, title="Input weights (pixel space)", colorbar_title="weight",
                              hover_label="weight", height=height)
    return _signed_bars(weights, f"Input weights from {source}", f"unit of {source}", "weight", height)


def output_weights_figure(weights: np.ndarray, target: str, to_classes: bool,
                          class_names: Sequence[str] | None = None, height: int = 320) -> go.Figure:
    """``weights``: float ``[out_units]``, into each class (``to_classes``) or each unit of ``target``."""
    if to_classes:
        return class_bar(weights, "Output weights to each class", "weight", class_names, height=height)
    return _signed_bars(weights, f"Output weights to {target}", f"unit of {target}", "weight", height)


def activation_histogram(counts: np.ndarray, edges: np.ndarray, firing_fraction: float,
                         split_name: str = "training", height: int = 320) -> go.Figure:
    """Histogram of the pre-activation (``counts [B]``, ``edges [B + 1]``) with its CDF.

    Bins from zero up, where the unit fires, are red; bins below, where ReLU
    silences it, grey. The CDF (right axis) reads the share of images below
    any value; it crosses ``1 - firing_fraction`` at zero.
    """
    counts = np.asarray(counts)
    edges = np.asarray(edges, dtype=float)
    centres = (edges[:-1] + edges[1:]) / 2
    widths = np.diff(edges)
    total = max(int(counts.sum()), 1)
    cdf = np.cumsum(counts) / total
    # A second y axis by hand rather than make_subplots: the same figure, built several times faster.
    fig = go.Figure([
        go.Bar(x=centres, y=counts, width=widths, name="images",
               marker_color=np.where(edges[:-1] >= 0, _POSITIVE, _SILENT).tolist(),
               customdata=np.stack([edges[:-1], edges[1:]], axis=1),
               hovertemplate="pre-activation %{customdata[0]:.3g} to %{customdata[1]:.3g}<br>"
                             "%{y} images<extra></extra>"),
        go.Scatter(x=edges[1:], y=cdf, name="CDF", mode="lines", line=dict(color="#333333", width=1.5), yaxis="y2",
                   hovertemplate="share of images below %{x:.3g}: %{y:.1%}<extra></extra>"),
    ])
    fig.add_vline(x=0, line_dash="dot", line_color="#555555")
    fig.update_layout(
        title=f"Fires on {firing_fraction:.1%} of {total:,} {split_name} images",
        xaxis=dict(title="pre-activation (fires above 0)"),
        yaxis=dict(title="images (log scale)", type="log", dtick=1),
        yaxis2=dict(title="cumulative share", overlaying="y", side="right", range=[0, 1.02],
                    tickvals=[0, 0.25, 0.5, 0.75, 1], tickformat=".0%", showgrid=False),
        height=height, showlegend=False, bargap=0, margin=reserved_margin(x_axis=True, y_axis=True, right=True),
    )
    return fig


def firing_by_class_figure(firing_by_class: np.ndarray, class_names: Sequence[str] | None = None,
                           height: int = 260) -> go.Figure:
    """Share of each digit's images on which the unit fires (``[10]`` in [0, 1]: MNIST labels, whatever
    classes the model tells apart)."""
    fig = class_bar(firing_by_class, "Fires on this share of each digit", "share firing", class_names,
                    height=height)
    fig.update_yaxes(range=[0, 1], tickformat=".0%")
    fig.update_xaxes(title="digit (MNIST label)")
    fig.update_traces(hovertemplate="digit %{x}<br>fires on %{y:.1%}<extra></extra>")
    return fig


def example_titles(labels: np.ndarray, activations: np.ndarray) -> list[str]:
    """Tile titles: the digit's label and the unit's activation (the image index is in the hover)."""
    return [f"{label} · {value:.2f}" for label, value in zip(labels, activations, strict=True)]


def examples_figure(images: np.ndarray, indices: np.ndarray, labels: np.ndarray, activations: np.ndarray,
                    embeddings: np.ndarray | None = None, columns: int = 8,
                    title: str = "Top examples (label · activation) and their Hadamard embeddings",
                    boxes: np.ndarray | None = None) -> go.Figure:
    """Training examples (uint8 ``[K, 28, 28]`` at ``indices``), each titled "label · activation",
    with each one's Hadamard embedding (float ``[K, 28, 28]``) right below it when given.
    ``boxes`` int ``[K, 4]``: a conv unit's receptive field where it was taken, outlined on both."""
    bands = [MosaicBand(list(images), example_titles(labels, activations), tile_ids=indices,
                        tile_label="training image", boxes=boxes)]
    if embeddings is not None:
        bands.append(MosaicBand(list(embeddings), signed=True, tile_ids=indices, tile_label="training image",
                                value_label="pixel × weight", colorbar_title="pixel ×<br>weight", boxes=boxes))
    return image_mosaic(bands, columns=columns, title=title)


def clusters_figure(central_images: np.ndarray, central_embeddings: np.ndarray, mean_embeddings: np.ndarray,
                    sizes: np.ndarray, main_classes: np.ndarray, central_indices: np.ndarray,
                    what: str = "") -> go.Figure:
    """One column per cluster: its central example (uint8 ``[C, 28, 28]``), that example's embedding, and the
    mean embedding of all its members (float ``[C, 28, 28]`` each).

    Central and mean embeddings have separate scales: a mean of many
    embeddings is fainter than any one of them, and would be invisible on
    the members' scale. All three may be crops (e.g. a conv unit's receptive
    field, ``[C, h, w]``); ``what`` then says so in the title.
    """
    count = len(sizes)
    titles = [f"C{c} · {size} · {label}" for c, (size, label) in enumerate(zip(sizes, main_classes, strict=True))]
    clusters = list(range(count))
    bands = [
        MosaicBand(list(central_images), titles, tile_ids=central_indices, tile_label="training image"),
        MosaicBand(list(central_embeddings), [f"C{c} central" for c in clusters], signed=True, tile_ids=clusters,
                   tile_label="cluster C", value_label="central example's pixel × weight", colorbar_title="central"),
        MosaicBand(list(mean_embeddings), [f"C{c} mean" for c in clusters], signed=True, tile_ids=clusters,
                   tile_label="cluster C", value_label="mean pixel × weight", colorbar_title="mean"),
    ]
    return image_mosaic(bands, columns=count, tile_px=min(110, max(70, 1100 // max(count, 1))),
                        title="Each cluster (cluster · members · main digit): central example, "
                              f"its embedding, and the members' mean embedding{what}")


def cluster_classes_figure(class_counts: np.ndarray, class_names: Sequence[str] | None = None) -> go.Figure:
    """How many members of each cluster (rows) have each MNIST digit (columns): int ``[C, 10]``."""
    counts = np.asarray(class_counts)
    names = list(class_names) if class_names is not None else [str(i) for i in range(counts.shape[1])]
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig = go.Figure(go.Heatmap(
        z=share, x=names, y=[f"C{c}" for c in range(len(counts))], customdata=counts,
        colorscale="Blues", zmin=0, zmax=1, colorbar=dict(title="share", thickness=12, tickformat=".0%"),
        hovertemplate="cluster %{y}, digit %{x}<br>%{customdata} members (%{z:.0%})<extra></extra>",
        text=np.where(counts > 0, counts.astype(str), ""), texttemplate="%{text}",
    ))
    fig.update_yaxes(autorange="reversed", title="cluster")
    fig.update_xaxes(type="category", title="digit (MNIST label)")
    fig.update_layout(title="Digits in each cluster (members; colour: share of the cluster)",
                      height=max(220, 28 * len(counts) + 100),
                      margin=reserved_margin(x_axis=True, y_axis=True, right=True))
    return fig
