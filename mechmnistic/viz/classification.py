"""Figures of the Classification Explorer: how the final layer turns one input into logits.

Arrays in (from ``mechmnistic.analysis.logit_effects``), ``go.Figure`` out.
Class-by-unit matrices are drawn with units along x and classes down y; the
logit-effects heatmap carries one invisible square marker per cell so that a
click on a cell returns it (Plotly heatmaps emit no selection events).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from .common import (
    DIVERGING,
    add_cell_markers,
    class_bar,
    class_by_unit_heatmap,
    clicked_xy,
    reserved_margin,
    symmetric_range,
)

#: What ``clicked_cell`` returns as the unit for the logit-effects heatmap's bias column.
BIAS_UNIT = -1


def logits_figure(logits: np.ndarray, class_names: Sequence[str], predicted: int) -> go.Figure:
    """One bar per class, ``logits`` float ``[C]``, the prediction highlighted."""
    return class_bar(logits, "Logits", "logit", class_names, highlight=predicted)


def probabilities_figure(probabilities: np.ndarray, class_names: Sequence[str], predicted: int) -> go.Figure:
    """One bar per class, ``probabilities`` float ``[C]`` (softmax of the logits) on a 0–1 axis."""
    fig = class_bar(probabilities, "Probabilities (softmax of the logits)", "probability", class_names,
                    highlight=predicted)
    fig.update_yaxes(range=[0, 1])
    return fig


def activations_figure(activations: np.ndarray, unit_layer: str, highlight: Sequence[int] = ()) -> go.Figure:
    """The final layer's inputs ``activations`` float ``[U]`` as bars; ``highlight`` units are outlined."""
    activations = np.asarray(activations, dtype=float)
    units = np.arange(len(activations))
    marked = np.zeros(len(activations), bool)
    marked[list(highlight)] = True
    fig = go.Figure(go.Bar(
        x=units, y=activations,
        marker=dict(color=np.where(marked, "#f4a300", "#4d4d4d").tolist()),
        hovertemplate=f"{unit_layer} unit %{{x}}<br>activation %{{y:.4g}}<extra></extra>",
    ))
    active = int((activations > 0).sum())
    fig.update_layout(
        title=f"Activations of {unit_layer} ({active} of {len(activations)} units active)",
        xaxis_title=f"{unit_layer} unit", yaxis_title="activation", height=260,
        margin=reserved_margin(x_axis=True, y_axis=True), bargap=0.1,
    )
    fig.update_xaxes(range=[-0.5, len(activations) - 0.5])
    return fig


def output_weights_heatmap(weight: np.ndarray, class_names: Sequence[str], unit_layer: str) -> go.Figure:
    """The final layer's weight matrix ``weight`` float ``[C, U]``: classes down, units across."""
    units = [str(u) for u in range(weight.shape[1])]
    fig = class_by_unit_heatmap(
        np.asarray(weight, dtype=float), class_names, units, "Output weights (class × unit)", "weight",
        f"class %{{y}}, {unit_layer} unit %{{x}}<br>weight %{{z:.4g}}<extra></extra>",
        height=90 + 24 * len(class_names),
    )
    fig.update_xaxes(title=f"{unit_layer} unit")
    return fig


def logit_effects_heatmap(effects: np.ndarray, activations: np.ndarray, class_names: Sequence[str],
                          unit_layer: str) -> go.Figure:
    """Logit effects ``effects`` float ``[C, U + 1]`` (bias last), clickable cell by cell.

    Trace 0 is the heatmap; trace 1 holds one invisible square marker per cell
    at ``(column, class)`` (the bias column is ``U``), which is what a click
    selects; read the click with ``clicked_cell``.
    """
    effects = np.asarray(effects, dtype=float)
    n_classes, width = effects.shape
    n_units = width - 1
    labels = [str(u) for u in range(n_units)] + ["bias"]
    fig = class_by_unit_heatmap(
        effects, class_names, labels,
        "Logit effects: activation × output weight (each row sums to the logit)", "effect", "<extra></extra>",
        height=110 + 26 * n_classes,
    )
    rows, columns = np.indices((n_classes, width))
    hover = [
        f"class {class_names[c]}, bias<br>effect {effects[c, u]:.4g}" if u == n_units else
        f"class {class_names[c]}, {unit_layer} unit {u}<br>effect {effects[c, u]:.4g}"
        f"<br>activation {activations[u]:.4g}<br>click to open this neuron"
        for c, u in zip(rows.ravel(), columns.ravel(), strict=True)
    ]
    add_cell_markers(fig, np.asarray(hover, dtype=object).reshape(n_classes, width))
    fig.update_xaxes(title=f"{unit_layer} unit (last column: the bias)")
    return fig


def clicked_cell(event: object, n_units: int) -> tuple[int, int] | None:
    """``(unit, class)`` of the cell clicked in ``logit_effects_heatmap`` (of ``n_units`` units), or ``None``.

    ``event`` is what ``st.plotly_chart(..., on_select="rerun")`` returns; a
    marker's x and y are its cell's column and row. Unit is ``BIAS_UNIT`` for
    the bias column.
    """
    found = clicked_xy(event)
    if found is None or not (0 <= found[0] <= n_units and found[1] >= 0):
        return None
    column, row = found
    return (BIAS_UNIT if column == n_units else column), row


def important_units_figure(weights: np.ndarray, maps: np.ndarray, titles: Sequence[str], columns: int = 6,
                           tile_px: int = 120) -> go.Figure:
    """Important units side by side: each unit's input weights above the input's embedding.

    ``weights``, ``maps``: float ``[K, 28, 28]``; ``titles``: one per unit.
    Weights share one diverging scale and embeddings another, so tiles
    compare by colour along a row. All tiles sit on one pair of axes (one
    heatmap per tile, offset), which builds and draws far faster than subplots.
    """
    count = len(weights)
    columns = max(1, min(columns, count))
    size, gap, title_space = weights.shape[1], 4, 7
    pitch_x, pitch_y = size + gap, title_space + 2 * size + 2 * gap
    weight_bound, map_bound = symmetric_range(weights), symmetric_range(maps)
    traces, annotations = [], []
    for k in range(count):
        chunk, col = divmod(k, columns)
        x0, y0 = col * pitch_x, chunk * pitch_y + title_space
        for z, y, axis, what in ((weights[k], y0, "coloraxis", "input weight"),
                                 (maps[k], y0 + size + gap, "coloraxis2", "pixel × weight")):
            traces.append(go.Heatmap(z=np.asarray(z, dtype=np.float32), x0=x0, y0=y, coloraxis=axis,
                                     hovertemplate=f"{titles[k]}<br>{what} %{{z:.4g}}<extra></extra>"))
        annotations.append(dict(x=x0 + size / 2, y=y0 - 1, text=titles[k], showarrow=False, yanchor="bottom",
                                font=dict(size=11)))
    chunks = -(-count // columns)
    fig = go.Figure(traces)
    fig.update_xaxes(visible=False, range=[-0.5, columns * pitch_x - gap - 0.5], constrain="domain")
    fig.update_yaxes(visible=False, range=[chunks * pitch_y - gap - 0.5, -0.5], scaleanchor="x", constrain="domain")
    fig.update_layout(
        annotations=annotations,
        coloraxis=dict(colorscale=DIVERGING, cmid=0, cmin=-weight_bound, cmax=weight_bound,
                       colorbar=dict(title="input weight", thickness=10, len=0.45, y=1, yanchor="top")),
        coloraxis2=dict(colorscale=DIVERGING, cmid=0, cmin=-map_bound, cmax=map_bound,
                        colorbar=dict(title="embedding", thickness=10, len=0.45, y=0, yanchor="bottom")),
        # Room for the colour bars and their titles, which are wider than the bars (see reserved_margin).
        height=int(chunks * tile_px * pitch_y / pitch_x) + 20, margin=dict(l=5, r=150, t=10, b=10),
    )
    return fig


def combined_embeddings_figure(maps: np.ndarray, titles: Sequence[str], tile_px: int = 300) -> go.Figure:
    """Combined embeddings ``maps`` float ``[K, 28, 28]`` side by side on one diverging scale centred at zero.

    One shared scale, so a pixel's colour compares across maps.
    """
    count, size = len(maps), maps.shape[1]
    pitch, title_space = size + 3, 3
    bound = symmetric_range(maps)
    pixel = np.stack(np.mgrid[0:size, 0:size], axis=-1).astype(np.int8)  # (row, col) of each cell, for the hover
    fig = go.Figure([
        go.Heatmap(z=np.asarray(z, dtype=np.float32), x0=k * pitch, y0=title_space, coloraxis="coloraxis",
                   customdata=pixel, hovertemplate=f"{title}<br>row %{{customdata[0]}}, col %{{customdata[1]}}"
                                                   "<br>contribution %{z:.4g}<extra></extra>")
        for k, (z, title) in enumerate(zip(maps, titles, strict=True))
    ])
    fig.update_xaxes(visible=False, range=[-0.5, count * pitch - 3.5], constrain="domain")
    fig.update_yaxes(visible=False, range=[title_space + size - 0.5, -0.5], scaleanchor="x", constrain="domain")
    fig.update_layout(
        annotations=[dict(x=k * pitch + size / 2, y=title_space - 1, text=title, showarrow=False, yanchor="bottom")
                     for k, title in enumerate(titles)],
        coloraxis=dict(colorscale=DIVERGING, cmid=0, cmin=-bound, cmax=bound,
                       colorbar=dict(title="logit", thickness=12)),
        height=tile_px + 20, margin=dict(l=5, r=115, t=10, b=10),  # the colour bar (see reserved_margin)
    )
    return fig


def latent_effects_heatmap(effects: np.ndarray, latents: Sequence[int], activations: np.ndarray,
                           rest: np.ndarray, rest_names: Sequence[str], class_names: Sequence[str],
                           dictionary: str) -> go.Figure:
    """The logits in a dictionary's latents: ``effects`` float ``[C, K]`` of the ``K`` active ``latents`` (with
    their ``activations`` ``[K]``), then the columns ``rest`` ``[C, R]`` named ``rest_names`` (the error term
    and the biases), clickable like ``logit_effects_heatmap`` (a latent's column is its position ``k``; read
    with ``clicked_cell(event, K)``, whose ``BIAS_UNIT`` then means any of the last columns)."""
    table = np.concatenate([np.asarray(effects, dtype=float), np.asarray(rest, dtype=float)], axis=1)
    n_classes, width = table.shape
    labels = [f"latent {j}" for j in latents] + list(rest_names)
    fig = class_by_unit_heatmap(
        table, class_names, labels,
        f"Logit effects in {dictionary}'s latents, error and biases (each row sums to the logit)", "effect",
        "<extra></extra>", height=110 + 26 * n_classes,
    )
    rows, columns = np.indices((n_classes, width))
    count = len(latents)
    hover = [
        f"class {class_names[c]}, {labels[u]}<br>effect {table[c, u]:.4g}" if u >= count else
        f"class {class_names[c]}, latent {latents[u]}<br>effect {table[c, u]:.4g}<br>activation "
        f"{activations[u]:.4g}<br>click to open this latent"
        for c, u in zip(rows.ravel(), columns.ravel(), strict=True)
    ]
    add_cell_markers(fig, np.asarray(hover, dtype=object).reshape(n_classes, width))
    fig.update_xaxes(title="active latents, then the reconstruction error and the biases")
    return fig
