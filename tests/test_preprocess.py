"""Drawn-digit preprocessing: MNIST-faithful, measured, and calm about empty canvases."""

from __future__ import annotations

import numpy as np
import pytest

from mechmnistic.canvas_sim import drawing_pipeline_accuracy, render_on_canvas
from mechmnistic.preprocess import ink_from_canvas, preprocess_drawing


def _rgba(gray):
    return np.dstack([gray, gray, gray, np.full_like(gray, 255)])


def test_blank_canvas_says_nothing_drawn():
    result = preprocess_drawing(_rgba(np.zeros((280, 280), np.uint8)))
    assert result.is_blank and "Nothing drawn" in result.message


def test_all_white_canvas_is_blank_not_a_crash():
    assert preprocess_drawing(_rgba(np.full((280, 280), 255, np.uint8))).is_blank


def test_single_dot_is_blank():
    canvas = np.zeros((280, 280), np.uint8)
    canvas[100:102, 100:102] = 255
    assert preprocess_drawing(_rgba(canvas)).is_blank


def test_a_stroke_fits_20x20_and_is_centred_by_mass():
    canvas = np.zeros((280, 280), np.uint8)
    canvas[20:220, 200:230] = 255  # a tall bar, far from the centre
    result = preprocess_drawing(_rgba(canvas))
    image = result.image.astype(float)
    rows, cols = np.nonzero(image > 0)
    assert rows.max() - rows.min() + 1 == 20  # the long side is scaled to 20 pixels
    ys, xs = np.mgrid[0:28, 0:28]
    com = ((ys * image).sum() / image.sum(), (xs * image).sum() / image.sum())
    assert abs(com[0] - 14) <= 0.5 and abs(com[1] - 14) <= 0.5
    assert result.bbox == (20, 200, 220, 230)


def test_dark_ink_on_white_and_transparent_backgrounds_work():
    canvas = np.full((280, 280), 255, np.uint8)
    canvas[50:200, 120:140] = 0
    assert ink_from_canvas(canvas)[100, 130] == 255 and ink_from_canvas(canvas)[0, 0] == 0
    rgba = np.zeros((280, 280, 4), np.uint8)
    rgba[50:200, 120:140] = 255
    assert not preprocess_drawing(rgba).is_blank


def test_float_canvas_in_unit_range_is_accepted():
    canvas = np.zeros((280, 280), np.float32)
    canvas[50:200, 120:140] = 1.0
    assert not preprocess_drawing(canvas).is_blank


@pytest.mark.parametrize("bad", [np.zeros((280, 280, 2), np.uint8), np.zeros((2, 2, 2, 2), np.uint8)])
def test_malformed_canvas_arrays_are_clear(bad):
    with pytest.raises(ValueError, match="canvas must"):
        preprocess_drawing(bad)


def test_nan_canvas_is_blank_not_a_crash():
    assert preprocess_drawing(np.full((280, 280), np.nan, np.float32)).is_blank


def test_simulated_drawings_look_like_drawings(mnist_test):
    rng = np.random.default_rng(0)
    canvas = render_on_canvas(mnist_test.images[0], rng)
    assert canvas.shape == (280, 280, 4) and canvas.dtype == np.uint8
    ink_rows = np.nonzero(canvas[..., 0].max(axis=1) > 127)[0]
    assert 90 <= ink_rows.max() - ink_rows.min() + 1 <= 260


@pytest.mark.slow
def test_faithful_pipeline_keeps_95_percent_of_clean_accuracy(bundled):
    """The preprocessing benchmark, as a test: drawn MNIST digits vs clean ones."""
    result = drawing_pipeline_accuracy(bundled("mlp-1x64"), n=1500, seed=1)
    assert result["faithful_ratio"] >= 0.95, result
    assert result["faithful"] > result["naive"] + 0.2, result  # the naive resize is far worse
