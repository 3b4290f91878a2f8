"""Simulated canvas drawings of real MNIST digits, to measure the drawing pipeline.

A user draws on a 280x280 canvas with a solid pen: the digit can be any size,
anywhere, with any stroke width. ``render_on_canvas`` turns an MNIST test digit
into such a drawing (random height 100-250 px, position and stroke thickness,
solid strokes with soft edges), so the preprocessing can be scored against the
model's clean accuracy on the same digits.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage

from .preprocess import CANVAS_SIZE


def _disk(radius: int) -> np.ndarray:
    ys, xs = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    return xs**2 + ys**2 <= radius**2


def render_on_canvas(
    digit: np.ndarray,
    rng: np.random.Generator,
    height_range: tuple[int, int] = (100, 250),
    thickness_range: tuple[int, int] = (-4, 8),
) -> np.ndarray:
    """MNIST digit uint8 ``[28, 28]`` -> RGBA canvas uint8 ``[280, 280, 4]`` (white ink on black).

    The digit is scaled to a random height, its strokes thinned or thickened by
    a random number of pixels (``thickness_range``), binarised into a pen
    stroke with anti-aliased edges, and placed at a random position.
    """
    ink = np.asarray(digit, dtype=np.float32) / 255.0
    rows, cols = np.nonzero(ink > 0.05)
    crop = ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    target_h = int(rng.integers(height_range[0], height_range[1] + 1))
    scale = target_h / crop.shape[0]
    target_w = max(2, min(CANVAS_SIZE - 10, round(crop.shape[1] * scale)))
    target_h = min(CANVAS_SIZE - 10, target_h)
    scaled = Image.fromarray((crop * 255).astype(np.uint8)).resize((target_w, target_h), Image.Resampling.BILINEAR)
    big = np.asarray(scaled)
    stroke = big > 127
    change = int(rng.integers(thickness_range[0], thickness_range[1] + 1))
    if change > 0:
        stroke = ndimage.binary_dilation(stroke, _disk(change))
    elif change < 0:
        thinned = ndimage.binary_erosion(stroke, _disk(-change))
        stroke = thinned if thinned.sum() > 0.3 * stroke.sum() else stroke
    soft = ndimage.gaussian_filter(stroke.astype(np.float32), 1.0)
    canvas = np.zeros((CANVAS_SIZE, CANVAS_SIZE), np.float32)
    top = int(rng.integers(0, CANVAS_SIZE - soft.shape[0] + 1))
    left = int(rng.integers(0, CANVAS_SIZE - soft.shape[1] + 1))
    canvas[top : top + soft.shape[0], left : left + soft.shape[1]] = soft
    gray = np.clip(canvas * 255, 0, 255).astype(np.uint8)
    return np.dstack([gray, gray, gray, np.full_like(gray, 255)])


def drawing_pipeline_accuracy(model, n: int = 2000, seed: int = 0) -> dict[str, float]:
    """Accuracy on ``n`` MNIST test digits drawn on a simulated canvas, per pipeline.

    Returns ``clean`` (the model on the original 28x28 digits), ``faithful``
    (``preprocess_drawing``), ``naive`` (``naive_resize``), ``faithful_ratio``
    (faithful / clean) and ``blank_results`` (drawings the pipeline called
    empty; counted as wrong).
    """
    from .data import load_mnist
    from .hooks import predict
    from .preprocess import naive_resize, preprocess_drawing

    images, labels = load_mnist("test")
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(images), size=n, replace=False)
    canvases = [render_on_canvas(images[i], rng) for i in chosen]
    result = {"n": n, "clean": float((predict(model, images[chosen]) == labels[chosen]).mean())}
    blanks = 0
    for key, pipeline in (("faithful", preprocess_drawing), ("naive", naive_resize)):
        processed = [pipeline(c) for c in canvases]
        usable = np.array([p.image is not None for p in processed])
        if key == "faithful":
            blanks = int((~usable).sum())
        stacked = np.stack([p.image if p.image is not None else np.zeros((28, 28), np.uint8) for p in processed])
        result[key] = float(((predict(model, stacked) == labels[chosen]) & usable).mean())
    result["faithful_ratio"] = result["faithful"] / result["clean"]
    result["blank_results"] = blanks
    return result
