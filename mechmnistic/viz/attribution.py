"""Logit attribution to a layer's units: one row per class, one column per unit, each cell clickable."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from .common import add_cell_markers, class_by_unit_heatmap


def attribution_heatmap(
    per_unit: np.ndarray, unit_labels: Sequence[str], class_names: Sequence[str] | None = None, title: str = "",
    value_label: str = "gradient x activation",
) -> go.Figure:
    """``per_unit`` float ``[K, U]`` (class x unit, e.g. ``LayerAttribution.per_unit[i]``) on a
    diverging scale centred at zero: red pushes the class's logit up, blue down.

    Columns are numbered ``0..U-1`` (ticks show ``unit_labels``); trace 1 holds
    one invisible marker per cell, so a click returns ``(unit, class)`` through
    ``viz.common.clicked_xy``.
    """
    per_unit = np.asarray(per_unit, dtype=float)
    classes = list(class_names) if class_names is not None else [str(k) for k in range(per_unit.shape[0])]
    labels = [str(label) for label in unit_labels]
    fig = class_by_unit_heatmap(per_unit, classes, labels, title, "attribution", "<extra></extra>",
                                height=max(240, 26 * len(classes) + 90))
    rows, columns = np.indices(per_unit.shape)
    hover = np.array([f"class {classes[k]}, {labels[u]}<br>{value_label} {per_unit[k, u]:.4g}<br>click to open"
                      for k, u in zip(rows.ravel(), columns.ravel(), strict=True)], dtype=object)
    return add_cell_markers(fig, hover.reshape(per_unit.shape))
