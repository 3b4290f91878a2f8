"""Neuron figures: each shows exactly the numbers it is given, signed data centred at zero."""

from __future__ import annotations

import numpy as np
import pytest

from mechmnistic.viz import neuron as viz
from mechmnistic.viz.common import MosaicBand, image_mosaic


def _tile(fig, trace_index: int, column: int, width: int = 28, gap: int = 2) -> np.ndarray:
    z = np.asarray(fig.data[trace_index].z, dtype=float)
    return z[:, column * (width + gap) : column * (width + gap) + width]


def test_mosaic_places_every_tile_with_its_values_and_hover_id():
    rng = np.random.default_rng(0)
    digits = rng.integers(0, 256, size=(5, 28, 28)).astype(np.uint8)
    maps = rng.normal(size=(5, 28, 28)).astype(np.float32)
    fig = image_mosaic([MosaicBand(list(digits), [f"d{i}" for i in range(5)], tile_ids=[10, 11, 12, 13, 14]),
                        MosaicBand(list(maps), signed=True, tile_ids=[10, 11, 12, 13, 14])], columns=3)
    # One trace per band and row of tiles: digits row 0, digits row 1, embeddings row 0, embeddings row 1.
    assert len(fig.data) == 4
    np.testing.assert_allclose(_tile(fig, 0, 2), digits[2] / 255.0, atol=1e-6)
    np.testing.assert_allclose(_tile(fig, 3, 1), maps[4], atol=1e-6)
    ids = np.asarray(fig.data[3].customdata)
    assert set(np.unique(ids)) == {-1, 13, 14}
    assert np.isnan(np.asarray(fig.data[3].z, dtype=float)[:, -28:]).all(), "no third tile in the last row"
    signed_axis = fig.layout.coloraxis2
    assert signed_axis.cmid == 0 and signed_axis.cmin == -signed_axis.cmax == pytest.approx(-np.abs(maps).max())
    assert fig.layout.coloraxis.cmin == 0 and fig.layout.coloraxis.cmax == 1
    assert [a.text for a in fig.layout.annotations] == [f"d{i}" for i in range(5)]
    # Each embedding strip sits right below its digit strip, in the same columns.
    assert fig.data[0].y0 < fig.data[2].y0 < fig.data[1].y0 < fig.data[3].y0


def test_mosaic_refuses_bands_of_different_lengths():
    with pytest.raises(ValueError):
        image_mosaic([MosaicBand([np.zeros((2, 2))]), MosaicBand([np.zeros((2, 2))] * 2)])


def test_input_weights_are_a_heatmap_centred_at_zero_or_bars_by_unit():
    weights = np.zeros((28, 28))
    weights[3, 4], weights[5, 6] = -2.0, 1.0
    heat = viz.input_weights_figure(weights, "pixels").data[0]
    assert heat.zmid == 0 and heat.zmin == -2.0 and heat.zmax == 2.0
    np.testing.assert_array_equal(np.asarray(heat.z), weights)
    bars = viz.input_weights_figure(np.array([0.5, -1.0]), "layers.0")
    assert list(bars.data[0].y) == [0.5, -1.0] and "layers.0" in bars.layout.xaxis.title.text


def test_output_weights_go_to_classes_or_units():
    to_classes = viz.output_weights_figure(np.arange(10.0) - 5, "layers.1", to_classes=True)
    assert list(to_classes.data[0].x) == [str(i) for i in range(10)]
    to_units = viz.output_weights_figure(np.array([1.0, -1.0, 2.0]), "layers.1", to_classes=False)
    assert list(to_units.data[0].y) == [1.0, -1.0, 2.0] and "layers.1" in to_units.layout.title.text


def test_activation_histogram_shows_counts_cdf_and_firing_share():
    counts, edges = np.array([5, 3, 2]), np.array([-1.0, 0.0, 1.0, 2.0])
    fig = viz.activation_histogram(counts, edges, firing_fraction=0.5)
    bars, cdf = fig.data
    assert list(bars.y) == [5, 3, 2]
    assert list(bars.marker.color) == ["#9e9e9e", "#b2182b", "#b2182b"], "silent bins grey, firing ones red"
    np.testing.assert_allclose(cdf.y, [0.5, 0.8, 1.0])
    assert "50.0% of 10 training images" in fig.layout.title.text


def test_examples_and_clusters_figures_carry_their_numbers():
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(3, 28, 28)).astype(np.uint8)
    maps = rng.normal(size=(3, 28, 28))
    fig = viz.examples_figure(images, np.array([7, 8, 9]), np.array([1, 2, 3]), np.array([0.5, 0.25, 0.125]), maps)
    assert [a.text for a in fig.layout.annotations] == ["1 · 0.50", "2 · 0.25", "3 · 0.12"]
    np.testing.assert_allclose(_tile(fig, 1, 2), maps[2], atol=1e-6)
    clusters = viz.clusters_figure(images[:2], maps[:2], maps[:2] / 10, np.array([30, 20]), np.array([4, 9]),
                                   np.array([7, 8]))
    assert "C0 · 30 · 4" in [a.text for a in clusters.layout.annotations]
    assert clusters.layout.coloraxis3.cmax == pytest.approx(np.abs(maps[:2] / 10).max())


def test_cluster_classes_heatmap_shows_shares_and_counts():
    counts = np.array([[3, 1, 0], [0, 0, 4]])
    trace = viz.cluster_classes_figure(counts).data[0]
    np.testing.assert_allclose(trace.z, [[0.75, 0.25, 0.0], [0.0, 0.0, 1.0]])
    np.testing.assert_array_equal(trace.customdata, counts)
