"""Conv views: filters, feature maps and top examples, each drawn as one tiled heatmap.

Many small maps (16 x 8 kernels, 16 feature maps) are laid out as tiles of a
single heatmap with one-cell gaps, not as a subplot each: one trace renders
quickly in the browser and keeps one colour scale, so tiles compare by colour.
Hovering a cell names its tile and its ``(row, col)`` inside the tile.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from .common import BOX_COLOUR, DIGIT, DIVERGING, add_cell_markers, signed_heatmap, symmetric_range

GAP_COLOUR = "#d9d9d9"  # between tiles: not white, which means zero on the diverging scale


def tile(maps: np.ndarray, columns: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lay ``maps`` ``[T, H, W]`` out in rows of ``columns`` tiles with one-cell gaps (NaN).

    Returns ``z`` ``[rows*(H+1)-1, columns*(W+1)-1]``, and per cell its
    ``tile`` index (-1 in gaps) and ``(row, col)`` inside the tile ``[.., .., 2]``.
    """
    count, height, width = maps.shape
    columns = max(1, min(columns, count))
    rows = -(-count // columns)
    shape = (rows * (height + 1) - 1, columns * (width + 1) - 1)
    z = np.full(shape, np.nan)
    which = np.full(shape, -1, dtype=np.int64)
    inside = np.zeros((*shape, 2), dtype=np.int64)
    r, c = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    for t in range(count):
        top, left = (t // columns) * (height + 1), (t % columns) * (width + 1)
        z[top : top + height, left : left + width] = maps[t]
        which[top : top + height, left : left + width] = t
        inside[top : top + height, left : left + width] = np.stack([r, c], axis=2)
    return z, which, inside


def tile_origin(index: int, columns: int, height: int, width: int) -> tuple[int, int]:
    """Top-left cell (row, col) of tile ``index`` in ``tile``'s layout."""
    return (index // columns) * (height + 1), (index % columns) * (width + 1)


def tiled_heatmap(
    maps: np.ndarray,
    labels: Sequence[str],
    columns: int,
    title: str = "",
    signed: bool = True,
    hover_label: str = "value",
    cell_px: int = 14,
    tile_titles: Sequence[str] | None = None,
    row_titles: Sequence[str] | None = None,
    column_titles: Sequence[str] | None = None,
) -> go.Figure:
    """``maps`` ``[T, H, W]`` as one heatmap of tiles; ``labels[t]`` names tile ``t`` on hover.

    Signed maps use the diverging scale centred at zero, shared by all tiles;
    otherwise digits in greys (uint8 or [0, 1]). Optional text: a title above
    each tile, or one per row of tiles (left) and per column (top).
    """
    maps = np.asarray(maps, dtype=float)
    if not signed and maps.max(initial=0) > 1:
        maps = maps / 255.0
    z, which, inside = tile(maps, columns)
    names = np.asarray(list(labels) + [""], dtype=object)[which]  # index -1 (gaps) picks ""
    custom = np.dstack([names, inside[..., 0], inside[..., 1]])
    hover = f"%{{customdata[0]}}<br>row %{{customdata[1]}}, col %{{customdata[2]}}<br>{hover_label} %{{z:.4g}}"
    if signed:
        bound = symmetric_range(maps)
        colours = dict(colorscale=DIVERGING, zmid=0, zmin=-bound, zmax=bound, colorbar=dict(thickness=12))
    else:
        colours = dict(colorscale=DIGIT, zmin=0, zmax=1, showscale=False)
    fig = go.Figure(go.Heatmap(z=z, customdata=custom, hovertemplate=hover + "<extra></extra>", hoverongaps=False,
                               **colours))
    fig.update_xaxes(visible=False, constrain="domain")
    fig.update_yaxes(visible=False, autorange="reversed", scaleanchor="x", constrain="domain")
    count, height, width = maps.shape
    columns = max(1, min(columns, count))
    text = dict(showarrow=False, font=dict(size=10), xref="x", yref="y")
    notes = []  # set at once: Plotly validates each add_annotation call, tens of milliseconds for a grid
    for t, name in enumerate(tile_titles or []):
        top, left = tile_origin(t, columns, height, width)
        notes.append(dict(x=left + (width - 1) / 2, y=top - 0.5, text=name, yanchor="bottom", **text))
    for r, name in enumerate(row_titles or []):
        top, _ = tile_origin(r * columns, columns, height, width)
        notes.append(dict(x=-0.7, y=top + (height - 1) / 2, text=name, xanchor="right", **text))
    for c, name in enumerate(column_titles or []):
        _, left = tile_origin(c, columns, height, width)
        notes.append(dict(x=left + (width - 1) / 2, y=-0.5, text=name, yanchor="bottom", **text))
    fig.update_layout(annotations=notes)
    above = 40 if title else 10
    above += 16 if (tile_titles or column_titles) else 0
    fig.update_layout(title=title, height=max(200, int(z.shape[0] * cell_px) + above + 10), plot_bgcolor=GAP_COLOUR,
                      margin=dict(l=60 if row_titles else 10, r=85 if signed else 10, t=above, b=10))
    return fig


def filters_grid(weights: np.ndarray, layer: str, in_layer: str = "input") -> go.Figure:
    """A conv layer's kernels ``[C_out, C_in, k, k]``: one row of tiles per output channel, one
    column per input channel, on one diverging scale."""
    c_out, c_in = weights.shape[:2]
    labels = [f"{layer} ch{o} ← {in_layer} ch{i}" for o in range(c_out) for i in range(c_in)]
    kernels = weights.reshape(c_out * c_in, *weights.shape[2:])
    if c_in == 1:  # one kernel per channel: a row of titled tiles reads better than a column
        return tiled_heatmap(kernels, labels, columns=8, title=f"{layer} filters", hover_label="weight",
                             cell_px=24, tile_titles=[f"ch{o}" for o in range(c_out)])
    return tiled_heatmap(kernels, labels, columns=c_in, title=f"{layer} filters (rows: its channels; columns: "
                         f"{in_layer} channels)", hover_label="weight", cell_px=10,
                         row_titles=[f"ch{o}" for o in range(c_out)],
                         column_titles=[f"ch{i}" for i in range(c_in)])


def feature_maps_grid(maps: np.ndarray, layer: str, stage: str = "post", columns: int = 8) -> go.Figure:
    """Each channel's map ``[C, H, W]`` on one input, on one diverging scale (white = 0)."""
    labels = [f"{layer} ch{c}" for c in range(len(maps))]
    return tiled_heatmap(maps, labels, columns=columns, title=f"{layer} feature maps ({stage})",
                         hover_label=stage, cell_px=max(4, 110 // maps.shape[1]),
                         tile_titles=[f"ch{c}" for c in range(len(maps))])


def examples_with_boxes(
    images: np.ndarray, boxes: np.ndarray, labels: Sequence[str], columns: int = 8, title: str = ""
) -> go.Figure:
    """Digits ``[k, 28, 28]`` with an inclusive pixel box ``[k, 4]`` (row0, col0, row1, col1) on each:
    where a channel fired."""
    fig = tiled_heatmap(images, labels, columns=columns, title=title, signed=False, hover_label="pixel", cell_px=4)
    columns = max(1, min(columns, len(images)))
    fig.update_layout(plot_bgcolor="white")  # white gaps around white paper: digits need no frame
    for i, (r0, c0, r1, c1) in enumerate(np.asarray(boxes)):
        top, left = tile_origin(i, columns, 28, 28)
        fig.add_shape(type="rect", x0=left + c0 - 0.5, x1=left + c1 + 0.5, y0=top + r0 - 0.5, y1=top + r1 + 0.5,
                      line=dict(color=BOX_COLOUR, width=2))
    return fig


def channel_filters(weights: np.ndarray, layer: str, channel: int, in_layer: str = "input") -> go.Figure:
    """One channel's kernels ``[C_in, k, k]``, one titled tile per input channel, on one diverging scale."""
    labels = [f"{layer} ch{channel} ← {in_layer} ch{i}" for i in range(len(weights))]
    return tiled_heatmap(weights, labels, columns=8, title=f"{layer} ch{channel}: its kernel on each {in_layer} "
                         "channel", hover_label="weight", cell_px=24 if len(weights) <= 8 else 12,
                         tile_titles=[f"{in_layer} ch{i}" for i in range(len(weights))])


def add_box(fig: go.Figure, box: np.ndarray | Sequence[int], colour: str = BOX_COLOUR) -> go.Figure:
    """Outline the inclusive cell box ``(row0, col0, row1, col1)`` on a single-map figure."""
    r0, c0, r1, c1 = (int(v) for v in box)
    fig.add_shape(type="rect", x0=c0 - 0.5, x1=c1 + 0.5, y0=r0 - 0.5, y1=r1 + 0.5, line=dict(color=colour, width=2))
    return fig


def channel_map(values: np.ndarray, title: str, value_label: str, marked: tuple[int, int] | None = None,
                height: int = 320) -> go.Figure:
    """One channel's map ``[H, W]`` on a diverging scale (white = 0), with the ``marked`` cell outlined.

    Every cell is clickable (invisible markers, see ``viz.common.add_cell_markers``):
    ``clicked_xy`` returns ``(col, row)``.
    """
    values = np.asarray(values, dtype=float)
    fig = signed_heatmap(values, title=title, colorbar_title=value_label, height=height)
    rows, cols = np.indices(values.shape)
    hover = np.array([f"row {r}, col {c}<br>{value_label} {values[r, c]:.4g}<br>click to open this position"
                      for r, c in zip(rows.ravel(), cols.ravel(), strict=True)], dtype=object)
    add_cell_markers(fig, hover.reshape(values.shape))
    if marked is not None:
        add_box(fig, (marked[0], marked[1], marked[0], marked[1]))
    return fig
