"""The feature-visualisation grid: each optimised input beside its nearest training images.

Hundreds of small images as hundreds of heatmap subplots would be slow to
build and to draw, so the grid is one pixel-exact PNG mosaic (``go.Image``,
no smoothing) with an invisible marker over each tile for hover and clicks:
``customdata = [0, unit]`` on a result (``unit`` is -1 for a direction) and
``[1, training index]`` on a nearest example.

Colours follow ``viz.common``: digits and clamped results in greys with ink
dark; unclamped results on the diverging scale centred at zero (blue negative,
red positive), one range shared by every result so tiles compare by colour.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from PIL import Image

from .common import symmetric_range

_TILE, _GAP, _GROUP_GAP = 28, 1, 6
_BACKGROUND = np.array([235, 235, 235], np.uint8)
# plotly's RdBu reversed: blue for negative, white at zero, red for positive.
_RDBU_R = np.array([(5, 48, 97), (33, 102, 172), (67, 147, 195), (146, 197, 222), (209, 229, 240), (247, 247, 247),
                    (253, 219, 199), (244, 165, 130), (214, 96, 77), (178, 24, 43), (103, 0, 31)], float)


def _greys(image: np.ndarray) -> np.ndarray:
    """Pixels in [0, 1] (or uint8) -> RGB uint8 with ink dark."""
    image = np.asarray(image, float)
    image = image / 255.0 if image.max(initial=0) > 1.0 else image
    level = np.round(255 * (1 - np.clip(image, 0, 1))).astype(np.uint8)
    return np.repeat(level[..., None], 3, axis=-1)


def _diverging(image: np.ndarray, bound: float) -> np.ndarray:
    position = (np.clip(np.asarray(image, float) / bound, -1, 1) + 1) / 2 * (len(_RDBU_R) - 1)
    low = np.floor(position).astype(int).clip(0, len(_RDBU_R) - 2)
    frac = (position - low)[..., None]
    return np.round(_RDBU_R[low] * (1 - frac) + _RDBU_R[low + 1] * frac).astype(np.uint8)


def _png_uri(rgb: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def feature_grid(
    images: np.ndarray,
    names: Sequence[str],
    clamped: bool,
    units: Sequence[int] | None = None,
    nearest_images: np.ndarray | None = None,
    nearest_indices: np.ndarray | None = None,
    nearest_similarity: np.ndarray | None = None,
    columns: int = 6,
    width_px: int = 900,
) -> go.Figure:
    """Results ``images`` ``[K, 28, 28]`` in a grid, each followed by its nearest training images.

    ``nearest_images``: ``[K, k, 28, 28]`` with their training ``nearest_indices``
    and ``nearest_similarity`` ``[K, k]``. ``columns``: groups per row.
    ``width_px``: the figure's width; its height follows, so tiles stay square
    (show it at that size, e.g. ``st.plotly_chart(..., width="content")``).
    """
    images = np.asarray(images, float)
    count = len(images)
    k = 0 if nearest_images is None else nearest_images.shape[1]
    units = list(units) if units is not None else [-1] * count
    columns = max(1, min(columns, count or 1))
    rows = -(-count // columns) if count else 1
    group_w = (1 + k) * (_TILE + _GAP) - _GAP
    width = columns * group_w + (columns - 1) * _GROUP_GAP
    height = rows * (_TILE + _GROUP_GAP) - _GROUP_GAP
    mosaic = np.empty((height, width, 3), np.uint8)
    mosaic[:] = 255
    bound = None if clamped else symmetric_range(images)
    centres, hover, custom = [], [], []
    for i in range(count):
        top = (i // columns) * (_TILE + _GROUP_GAP)
        left0 = (i % columns) * (group_w + _GROUP_GAP)
        mosaic[top : top + _TILE, left0 + _TILE : left0 + group_w] = _BACKGROUND  # the gaps inside a group
        tiles = [_greys(images[i]) if clamped else _diverging(images[i], bound)]
        tiles += [_greys(nearest_images[i, j]) for j in range(k)]
        for j, tile in enumerate(tiles):
            left = left0 + j * (_TILE + _GAP)
            mosaic[top : top + _TILE, left : left + _TILE] = tile
            centres.append((left + _TILE / 2 - 0.5, top + _TILE / 2 - 0.5))
            if j == 0:
                hover.append(f"{names[i]}<br>click: open in the Neuron Explorer" if units[i] >= 0 else names[i])
                custom.append((0, units[i]))
            else:
                index, similarity = int(nearest_indices[i, j - 1]), float(nearest_similarity[i, j - 1])
                hover.append(f"nearest to {names[i]}: training image #{index}<br>cosine similarity {similarity:.3f}")
                custom.append((1, index))
    pixel_px = width_px / width
    fig = go.Figure(go.Image(source=_png_uri(mosaic), x0=0, y0=0, dx=1, dy=1, zsmooth=False, hoverinfo="skip"))
    centres = np.array(centres, float).reshape(-1, 2)
    fig.add_trace(go.Scatter(
        x=centres[:, 0], y=centres[:, 1], mode="markers", customdata=np.array(custom, np.int64).reshape(-1, 2),
        hovertext=hover, hovertemplate="%{hovertext}<extra></extra>", showlegend=False,
        marker=dict(symbol="square", size=_TILE * pixel_px * 0.9, opacity=0),
    ))
    fig.update_xaxes(visible=False, range=[-0.5, width - 0.5], constrain="domain")
    fig.update_yaxes(visible=False, range=[height - 0.5, -0.5], scaleanchor="x", constrain="domain")
    fig.update_layout(width=width_px, height=int(height * pixel_px) + 20, margin=dict(l=0, r=0, t=10, b=10),
                      dragmode=False)
    return fig
