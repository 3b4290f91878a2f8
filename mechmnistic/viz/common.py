"""Plotly building blocks shared by every view.

Conventions: signed data (weights, embeddings, effects) always uses a
diverging colour scale centred at zero, symmetric around it, so white means
exactly zero; digits are shown in greys with ink dark. Builders return a
``go.Figure`` and never show it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

#: Blue = negative, red = positive (the EIS VII write-up's colours reversed
#: would confuse; we keep the common interpretability convention).
DIVERGING = "RdBu_r"
DIGIT = "gray_r"
#: Outlines: a conv unit's receptive field, a chosen cell (orange reads on greys and on red/blue).
BOX_COLOUR = "#f4a300"


def reserved_margin(*, title: bool = True, x_axis: bool = False, y_axis: bool = False, right: bool = False,
                    left: int = 20, bottom: int = 15, **exactly: int) -> dict[str, int]:
    """Margins (px) that already hold what will sit in them: the title, an x axis's or y axis's tick labels
    and title, a colour bar or second y axis on the ``right``.

    Plotly grows a margin that is too small for what it places there, but only after drawing the whole
    figure, which it then draws again (about a third of a chart's drawing time in Chromium). With the usual
    room reserved up front it draws once. A label wider than that still fits: Plotly grows the margin as
    before, at the old cost. ``left`` and ``bottom`` are the margins without a y or x axis (an image's
    hidden axes need a little); ``exactly`` sets any side (``l``, ``r``, ``t``, ``b``) outright.
    """
    margin = dict(l=85 if y_axis else left, r=90 if right else 10, t=40 if title else 10, b=75 if x_axis else bottom)
    return {**margin, **exactly}


def legend_below_margin(height: int, top: int, offset: float = 0.2) -> int:
    """The bottom margin (px) that holds a horizontal legend placed ``offset`` of the plot's height below it
    (Plotly's ``legend.y = -offset``), under the x axis's labels: ``b = offset * (height - top - b) + 40``,
    solved for ``b`` (see reserved_margin)."""
    return round((offset * (height - top) + 40) / (1 + offset))


def colorbar_room(title: str) -> int:
    """The right margin (px) a vertical colour bar needs: room for its tick labels, or for its title (each
    line about 6.5 px a character) where that is wider (see reserved_margin)."""
    longest = max(len(line) for line in re.split(r"<br\s*/?>", title))
    return max(60, 40 + round(6.5 * longest))


def symmetric_range(z: np.ndarray) -> float:
    """Half-width of a colour range centred at zero that covers ``z`` (never 0)."""
    bound = float(np.nanmax(np.abs(z))) if np.size(z) else 0.0
    return bound if bound > 0 else 1.0


def signed_heatmap(
    z: np.ndarray,
    title: str = "",
    colorbar_title: str = "",
    hover_label: str = "value",
    zmax: float | None = None,
    height: int = 320,
) -> go.Figure:
    """A signed 2-D map (e.g. 28x28 weights) on a diverging scale centred at zero.

    ``z``: float ``[H, W]``. Rows are drawn top to bottom like an image.
    """
    z = np.asarray(z, dtype=float)
    bound = zmax if zmax is not None else symmetric_range(z)
    fig = go.Figure(
        go.Heatmap(
            z=z,
            colorscale=DIVERGING,
            zmid=0,
            zmin=-bound,
            zmax=bound,
            colorbar=dict(title=colorbar_title, thickness=12),
            hovertemplate=f"row %{{y}}, col %{{x}}<br>{hover_label} %{{z:.4g}}<extra></extra>",
        )
    )
    _image_axes(fig, z.shape)
    fig.update_layout(title=title, height=height,
                      margin=reserved_margin(title=bool(title), r=colorbar_room(colorbar_title)))
    return fig


def digit_figure(image: np.ndarray, title: str = "", height: int = 260) -> go.Figure:
    """A digit (uint8 ``[28, 28]`` or float in [0, 1]) in greys, ink dark."""
    image = np.asarray(image, dtype=float)
    if image.max(initial=0) > 1.0:
        image = image / 255.0
    fig = go.Figure(
        go.Heatmap(
            z=image,
            colorscale=DIGIT,
            zmin=0,
            zmax=1,
            showscale=False,
            hovertemplate="row %{y}, col %{x}<br>pixel %{z:.3f}<extra></extra>",
        )
    )
    _image_axes(fig, image.shape)
    fig.update_layout(title=title, height=height, margin=reserved_margin(title=bool(title)))
    return fig


def image_grid(
    images: Sequence[np.ndarray],
    titles: Sequence[str],
    columns: int = 8,
    signed: bool = False,
    shared_scale: bool = True,
    tile_px: int = 110,
    title: str = "",
) -> go.Figure:
    """A grid of small 2-D maps: digits (``signed=False``) or signed maps on one diverging scale.

    ``images``: a sequence of float ``[H, W]``. With ``shared_scale`` all
    signed tiles share one colour range, so tiles compare by colour.
    """
    count = len(images)
    columns = max(1, min(columns, count or 1))
    rows = max(1, -(-count // columns))
    fig = make_subplots(rows=rows, cols=columns, subplot_titles=list(titles) + [""] * (rows * columns - count),
                        horizontal_spacing=0.01, vertical_spacing=0.06 if rows > 1 else 0.0)
    bound = symmetric_range(np.stack(images)) if (signed and shared_scale and count) else None
    for i, image in enumerate(images):
        z = np.asarray(image, dtype=float)
        if signed:
            b = bound if bound is not None else symmetric_range(z)
            trace = go.Heatmap(z=z, colorscale=DIVERGING, zmid=0, zmin=-b, zmax=b, showscale=(i == 0),
                               colorbar=dict(thickness=10, len=0.6) if i == 0 else None,
                               hovertemplate="row %{y}, col %{x}<br>%{z:.4g}<extra></extra>")
        else:
            z = z / 255.0 if z.max(initial=0) > 1 else z
            trace = go.Heatmap(z=z, colorscale=DIGIT, zmin=0, zmax=1, showscale=False,
                               hovertemplate="row %{y}, col %{x}<br>pixel %{z:.3f}<extra></extra>")
        fig.add_trace(trace, row=i // columns + 1, col=i % columns + 1)
    fig.update_xaxes(visible=False, constrain="domain")
    fig.update_yaxes(visible=False, autorange="reversed", scaleanchor="x", constrain="domain")
    for axis_index in range(1, rows * columns + 1):
        suffix = "" if axis_index == 1 else str(axis_index)
        fig.layout[f"yaxis{suffix}"].scaleanchor = f"x{suffix}"
    fig.update_annotations(font_size=10)
    top = 40 if title else 20
    fig.update_layout(title=title, height=rows * tile_px + top, margin=dict(l=5, r=5, t=top, b=5))
    return fig


def _image_axes(fig: go.Figure, shape: tuple[int, ...]) -> None:
    fig.update_xaxes(
        showticklabels=False, showgrid=False, zeroline=False, constrain="domain", range=[-0.5, shape[1] - 0.5]
    )
    fig.update_yaxes(showticklabels=False, showgrid=False, zeroline=False, autorange="reversed",
                     scaleanchor="x", constrain="domain")


def class_bar(values: np.ndarray, title: str, yaxis_title: str, class_names: Sequence[str] | None = None,
              highlight: int | None = None, height: int = 280) -> go.Figure:
    """One bar per class, coloured by sign (signed values) with an optional highlighted class."""
    values = np.asarray(values, dtype=float)
    names = list(class_names) if class_names is not None else [str(i) for i in range(len(values))]
    colors = np.where(values >= 0, "#b2182b", "#2166ac").astype(object)
    if highlight is not None and 0 <= highlight < len(values):
        colors[highlight] = "#f4a300"
    fig = go.Figure(go.Bar(x=names, y=values, marker_color=list(colors),
                           hovertemplate="class %{x}<br>%{y:.4g}<extra></extra>"))
    fig.update_layout(title=title, yaxis_title=yaxis_title, xaxis_title="class", height=height,
                      margin=reserved_margin(x_axis=True, y_axis=True), xaxis=dict(type="category"))
    return fig



@dataclass(frozen=True)
class MosaicBand:
    """One kind of tile in ``image_mosaic``: digits (greys) or signed maps (one diverging scale per band).

    ``images``: float or uint8 ``[H, W]`` each; ``titles``: one per tile, or
    empty for none; ``tile_ids``: a number per tile for the hover (e.g. a
    dataset index; default its position); ``boxes``: int ``[T, 4]``, an
    inclusive ``(row0, col0, row1, col1)`` outlined on each tile (where a conv
    channel fired), or ``None``.
    """

    images: Sequence[np.ndarray]
    titles: Sequence[str] = ()
    signed: bool = False
    tile_ids: Sequence[int] | None = None
    tile_label: str = "tile"
    value_label: str = "value"
    colorbar_title: str = ""
    boxes: np.ndarray | None = None


def image_mosaic(bands: Sequence[MosaicBand], columns: int = 8, tile_px: int = 110, title: str = "") -> go.Figure:
    """Grids of small 2-D maps drawn as a few heatmap traces on ONE pair of axes.

    Shows what ``image_grid`` shows, but a grid of dozens of tiles is built,
    sent and drawn in a fraction of the time a subplot per tile takes.
    Several ``bands`` of the same length are interleaved row by row, so tile
    ``i`` of every band sits in the same column: a digit right above its
    embedding, say. Each signed band has its own symmetric scale and colour bar.
    """
    count = len(bands[0].images) if bands else 0
    if any(len(band.images) != count for band in bands):
        raise ValueError("every band needs the same number of tiles")
    height, width = np.asarray(bands[0].images[0]).shape if count else (28, 28)
    columns = max(1, min(columns, count or 1))
    rows = max(1, -(-count // columns))
    gap = 2  # empty cells between tiles
    title_rows = [6 if band.titles else gap for band in bands]  # room above each tile for its title
    strip = [height + t for t in title_rows]
    row_height = sum(strip)
    traces, annotations, shapes, layout = [], [], [], {}
    signed_bands = 0
    for b, band in enumerate(bands):
        axis = "coloraxis" if b == 0 else f"coloraxis{b + 1}"
        if band.signed:
            stacked = np.stack([np.asarray(image, dtype=float) for image in band.images]) if count else np.zeros(1)
            bound = symmetric_range(stacked)
            layout[axis] = dict(colorscale=DIVERGING, cmid=0, cmin=-bound, cmax=bound, colorbar=dict(
                title=band.colorbar_title, thickness=10, len=0.9, x=1.0 + 0.09 * signed_bands, xanchor="left"))
            hover = f"{band.tile_label} %{{customdata}}<br>{band.value_label} %{{z:.4g}}<extra></extra>"
            signed_bands += 1
        else:
            layout[axis] = dict(colorscale=DIGIT, cmin=0, cmax=1, showscale=False)
            hover = f"{band.tile_label} %{{customdata}}<br>pixel %{{z:.3f}}<extra></extra>"
        ids = list(band.tile_ids) if band.tile_ids is not None else list(range(count))
        for r in range(rows):
            top = r * row_height + sum(strip[:b]) + title_rows[b]
            z = np.full((height, columns * (width + gap) - gap), np.nan, dtype=np.float32)
            tile_id = np.full(z.shape, -1, dtype=np.int32)  # gaps have no hover, so -1 is never shown
            for c in range(columns):
                i = r * columns + c
                if i >= count:
                    break
                tile = np.asarray(band.images[i], dtype=float)
                if not band.signed and tile.max(initial=0) > 1:
                    tile = tile / 255.0
                left = c * (width + gap)
                z[:, left : left + width] = tile
                tile_id[:, left : left + width] = ids[i]
                if band.boxes is not None:
                    r0, c0, r1, c1 = (int(v) for v in band.boxes[i])
                    shapes.append(dict(type="rect", xref="x", yref="y", x0=left + c0 - 0.5, x1=left + c1 + 0.5,
                                       y0=top + r0 - 0.5, y1=top + r1 + 0.5, line=dict(color=BOX_COLOUR, width=1.5)))
                if band.titles:
                    annotations.append(dict(x=left + (width - 1) / 2, y=top - 1, text=band.titles[i], showarrow=False,
                                            xref="x", yref="y", yanchor="bottom", font=dict(size=10)))
            # float32/int32: Plotly sends numpy arrays as typed binary, so this halves what the browser receives.
            traces.append(go.Heatmap(z=z, x0=0, dx=1, y0=top, dy=1, customdata=tile_id, coloraxis=axis,
                                     hoverongaps=False, hovertemplate=hover))
    fig = go.Figure(traces)
    fig.update_xaxes(visible=False, range=[-0.5, columns * (width + gap) - gap - 0.5], constrain="domain")
    fig.update_yaxes(visible=False, range=[rows * row_height - 0.5, -0.5], scaleanchor="x", constrain="domain")
    top_margin = 40 if title else 10
    tile_rows_px = rows * tile_px * row_height / (height + 6)
    # Each colour bar needs about 85 px on the right (see reserved_margin).
    fig.update_layout(title=title, annotations=annotations, shapes=shapes, height=int(tile_rows_px) + top_margin + 10,
                      margin=dict(l=5, r=10 + 85 * signed_bands, t=top_margin, b=5), plot_bgcolor="rgba(0,0,0,0)",
                      **layout)
    return fig


def class_by_unit_heatmap(z: np.ndarray, class_names: Sequence[str], x_labels: Sequence[str], title: str,
                           colorbar_title: str, hover: str, height: int) -> go.Figure:
    """A signed ``[C, X]`` matrix (classes down, e.g. units across) on numeric axes whose ranges are
    exactly the cell edges, so ``add_cell_markers`` can make its cells clickable."""
    n_classes, width = z.shape
    bound = symmetric_range(z)
    fig = go.Figure(go.Heatmap(
        z=z.astype(np.float32), x=np.arange(width), y=np.arange(n_classes), colorscale=DIVERGING, zmid=0,
        zmin=-bound, zmax=bound,
        colorbar=dict(title=colorbar_title, thickness=12), hovertemplate=hover,
    ))
    step = max(1, width // 32)
    fig.update_xaxes(range=[-0.5, width - 0.5], tickvals=list(range(0, width, step)),
                     ticktext=[x_labels[i] for i in range(0, width, step)], showgrid=False, zeroline=False)
    fig.update_yaxes(range=[n_classes - 0.5, -0.5], tickvals=list(range(n_classes)), ticktext=list(class_names),
                     title="class", showgrid=False, zeroline=False)
    # Reserved room (see reserved_margin) that grows with the colour bar's title, which is wider than the bar,
    # and with long column labels, which Plotly turns upright when they crowd.
    margin = reserved_margin(x_axis=True, y_axis=True, right=True)
    longest = max((len(str(label)) for label in x_labels), default=0)
    margin.update(r=max(margin["r"], colorbar_room(colorbar_title)),
                  b=max(margin["b"], 30 + round(6.5 * longest)) if longest > 4 else margin["b"])
    fig.update_layout(title=title, height=height, margin=margin)
    return fig


def add_cell_markers(fig: go.Figure, hover: np.ndarray) -> go.Figure:
    """Make a heatmap's cells clickable: one invisible square marker per cell ``(column, row)``,
    carrying ``hover`` (str ``[rows, columns]``) as its hover text. Plotly heatmaps emit no
    selection events; these markers do, and ``clicked_xy`` reads the cell back."""
    rows, columns = np.indices(np.shape(hover))
    fig.data[0].hoverinfo = "skip"  # the markers carry the hover text
    fig.add_trace(go.Scatter(
        x=columns.ravel(), y=rows.ravel(), mode="markers",
        marker=dict(symbol="square", size=max(6, min(18, 900 // max(columns.shape[1], 1))), opacity=0),
        hovertext=np.asarray(hover, dtype=object).ravel(), hovertemplate="%{hovertext}<extra></extra>",
        showlegend=False,
    ))
    fig.update_layout(hovermode="closest")
    return fig


def _clicked_points(event: object) -> list:
    # Read dict-style: that works in the browser and with AppTest's injected state alike.
    try:
        return list(event["selection"]["points"])  # type: ignore[index]
    except (KeyError, TypeError):
        return []


def clicked_xy(event: object) -> tuple[int, int] | None:
    """``(x, y)`` of the first point clicked in a chart, as integers (a cell's column and row for
    ``add_cell_markers``), or ``None``. ``event``: what ``st.plotly_chart(..., on_select="rerun")``
    returns."""
    for point in _clicked_points(event):
        try:
            return int(point["x"]), int(point["y"])
        except (KeyError, TypeError, ValueError):
            continue
    return None


def clicked_id(event: object) -> int | None:
    """The integer ``customdata`` of the first point clicked (e.g. a bar of ``ranked_bar``), or ``None``."""
    for point in _clicked_points(event):
        value = point.get("customdata") if isinstance(point, dict) else None
        value = value[0] if isinstance(value, list | tuple) and value else value
        try:
            return int(value)
        except (TypeError, ValueError):
            continue
    return None
