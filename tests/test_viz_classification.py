"""Classification figures: signed scales centred at zero, one clickable marker per cell, clicks read back."""

from __future__ import annotations

import numpy as np

from mechmnistic.viz.classification import (
    BIAS_UNIT,
    activations_figure,
    clicked_cell,
    combined_embeddings_figure,
    important_units_figure,
    logit_effects_heatmap,
    logits_figure,
    output_weights_heatmap,
    probabilities_figure,
)

NAMES = [str(c) for c in range(3)]


def test_logit_effects_heatmap_has_a_marker_over_every_cell():
    effects = np.array([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0], [4.0, 0.0, 0.25]])  # 2 units + bias
    fig = logit_effects_heatmap(effects, np.array([2.0, 0.5]), NAMES, "layers.0")
    heatmap, markers = fig.data
    np.testing.assert_array_equal(heatmap.z, effects)
    assert heatmap.zmid == 0 and heatmap.zmin == -4.0 and heatmap.zmax == 4.0
    assert sorted(zip(markers.x, markers.y, strict=True)) == [(u, c) for u in range(3) for c in range(3)]
    assert markers.marker.opacity == 0 and markers.marker.symbol == "square"
    assert tuple(fig.layout.xaxis.range) == (-0.5, 2.5), "axes end at the cell edges"
    assert tuple(fig.layout.yaxis.range) == (2.5, -0.5), "class 0 on top"
    assert list(fig.layout.xaxis.ticktext) == ["0", "1", "bias"]
    hover = dict(zip(zip(markers.x, markers.y, strict=True), markers.hovertext, strict=True))
    assert "unit 1" in hover[(1, 2)] and "effect 0" in hover[(1, 2)] and "activation 0.5" in hover[(1, 2)]
    assert hover[(2, 0)].startswith("class 0, bias")


def test_clicked_cell_reads_streamlit_events():
    assert clicked_cell({"selection": {"points": [{"x": 1, "y": 2, "customdata": {"0": 1}}]}}, 2) == (1, 2)
    assert clicked_cell({"selection": {"points": [{"x": 2, "y": 0}]}}, 2) == (BIAS_UNIT, 0)
    for nothing in (None, {}, {"selection": {"points": []}}, {"selection": {"points": [{"x": "a", "y": 1}]}},
                    {"selection": {"points": [{"x": 9, "y": 1}]}}, {"selection": {"points": [{"y": 1}]}}):
        assert clicked_cell(nothing, 2) is None


def test_output_weights_heatmap_is_classes_by_units():
    weight = np.arange(6, dtype=float).reshape(3, 2) - 2
    fig = output_weights_heatmap(weight, NAMES, "fc1")
    trace = fig.data[0]
    np.testing.assert_array_equal(trace.z, weight)
    assert trace.zmid == 0 and trace.zmax == 3.0 and fig.layout.xaxis.title.text == "fc1 unit"


def test_bars():
    fig = logits_figure(np.array([1.0, -2.0, 3.0]), NAMES, predicted=2)
    assert list(fig.data[0].y) == [1.0, -2.0, 3.0] and fig.data[0].marker.color[2] == "#f4a300"
    probabilities = probabilities_figure(np.array([0.2, 0.3, 0.5]), NAMES, predicted=2)
    assert tuple(probabilities.layout.yaxis.range) == (0, 1)
    activations = activations_figure(np.array([0.0, 2.0, 1.0]), "layers.0", highlight=[2])
    assert "2 of 3 units active" in activations.layout.title.text
    assert activations.data[0].marker.color[2] != activations.data[0].marker.color[1]


def test_important_units_share_one_scale_per_row_kind():
    weights = np.stack([np.full((28, 28), -2.0), np.full((28, 28), 1.0), np.full((28, 28), 0.5)])
    maps = weights * 0.1
    fig = important_units_figure(weights, maps, ["unit 4", "unit 7", "unit 9"], columns=2)
    assert len(fig.data) == 6
    assert [t.coloraxis for t in fig.data] == ["coloraxis", "coloraxis2"] * 3
    assert fig.layout.coloraxis.cmin == -2.0 and fig.layout.coloraxis.cmax == 2.0
    assert np.isclose(fig.layout.coloraxis2.cmax, 0.2)
    assert [a.text for a in fig.layout.annotations] == ["unit 4", "unit 7", "unit 9"]
    # Unit 9 starts the second row of tiles, under unit 4.
    assert fig.data[4].x0 == fig.data[0].x0 and fig.data[4].y0 > fig.data[1].y0


def test_combined_embeddings_share_one_scale_centred_at_zero():
    maps = np.zeros((2, 28, 28))
    maps[0, 3, 4], maps[1, 5, 6] = -0.75, 0.5
    fig = combined_embeddings_figure(maps, ["important", "all"])
    assert fig.layout.coloraxis.cmid == 0 and fig.layout.coloraxis.cmin == -0.75 and fig.layout.coloraxis.cmax == 0.75
    assert [t.coloraxis for t in fig.data] == ["coloraxis", "coloraxis"]
    np.testing.assert_array_equal(fig.data[1].z, maps[1])
    assert tuple(fig.data[1].customdata[5][6]) == (5, 6), "hover names the pixel"
    assert [a.text for a in fig.layout.annotations] == ["important", "all"]
