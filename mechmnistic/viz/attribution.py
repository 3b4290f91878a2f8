"""Logit attribution to a layer's units: one row per class, one column per unit."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from .common import DIVERGING, symmetric_range


def attribution_heatmap(
    per_unit: np.ndarray, unit_labels: Sequence[str], class_names: Sequence[str] | None = None, title: str = ""
) -> go.Figure:
    """``per_unit`` float ``[K, U]`` (class x unit, e.g. ``LayerAttribution.per_unit[i]``) on a
    diverging scale centred at zero: red pushes the class's logit up, blue down."""
    per_unit = np.asarray(per_unit, dtype=float)
    classes = list(class_names) if class_names is not None else [str(k) for k in range(per_unit.shape[0])]
    bound = symmetric_range(per_unit)
    fig = go.Figure(go.Heatmap(
        z=per_unit, x=list(unit_labels), y=classes, colorscale=DIVERGING, zmid=0, zmin=-bound, zmax=bound,
        colorbar=dict(title="attribution", thickness=12),
        hovertemplate="class %{y}<br>%{x}<br>gradient x activation %{z:.4g}<extra></extra>",
    ))
    fig.update_xaxes(type="category", showticklabels=len(unit_labels) <= 40)
    fig.update_yaxes(type="category", autorange="reversed", title="class")
    fig.update_layout(title=title, height=max(240, 26 * len(classes) + 90), margin=dict(l=10, r=10, t=40, b=10))
    return fig
