"""Turning a drawing into an MNIST-like 28x28 digit, the way MNIST itself was made.

MNIST's digits were size-normalised to fit a 20x20 box keeping their aspect
ratio (anti-aliased, hence grey levels), then placed in a 28x28 field so that
their centre of mass sits at the centre. ``preprocess_drawing`` repeats those
steps on a canvas image: find the ink, crop to its bounding box, scale the long
side to 20 pixels with area averaging, and paste it into 28x28 by its centre of
mass. A canvas with (almost) no ink gives a result with ``image=None`` and a
message, never an exception.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

CANVAS_SIZE = 280
FIT_SIZE = 20
FIELD_SIZE = 28
#: Ink below this level (0-255) is background noise, not drawing.
INK_THRESHOLD = 30
#: A drawing needs at least this many ink pixels (a short stroke on a 280x280
#: canvas has hundreds) to be treated as a digit.
MIN_INK_PIXELS = 20


@dataclass(frozen=True)
class Preprocessed:
    """The result of preprocessing one drawing.

    ``image``: uint8 ``[28, 28]`` (white ink on black, like MNIST) or ``None``
    when nothing was drawn; ``message`` says why in that case.
    ``bbox``: the ink's (top, left, bottom, right) on the original canvas.
    """

    image: np.ndarray | None
    message: str = ""
    bbox: tuple[int, int, int, int] | None = None

    @property
    def is_blank(self) -> bool:
        return self.image is None


def ink_from_canvas(canvas: np.ndarray) -> np.ndarray:
    """A canvas image -> ink intensity, float32 ``[H, W]`` in 0..255 (ink high).

    Accepts grayscale ``[H, W]``, RGB or RGBA ``[H, W, 3|4]`` (uint8 or float in
    [0, 1]). On a mostly transparent image the painted (opaque) pixels are the
    ink. A mostly light image (dark ink on white) is inverted, so either
    drawing style works.
    """
    array = np.asarray(canvas)
    if array.dtype != np.uint8:
        array = np.clip(np.nan_to_num(array.astype(np.float64)), 0, 1) * 255
    array = array.astype(np.float32)
    alpha = None
    if array.ndim == 3:
        if array.shape[2] not in (3, 4):
            raise ValueError(f"canvas must have 1, 3 or 4 channels, got {array.shape[2]}")
        if array.shape[2] == 4:
            alpha = array[..., 3] / 255.0
        array = array[..., :3].mean(axis=2)
    elif array.ndim != 2:
        raise ValueError(f"canvas must be [H, W] or [H, W, C], got shape {array.shape}")
    if alpha is not None and np.median(alpha) < 0.5:
        # Mostly transparent: whatever was painted is the ink, whatever its colour.
        return alpha * 255.0
    if np.median(array) > 127:
        array = 255.0 - array
    return array


def preprocess_drawing(canvas: np.ndarray) -> Preprocessed:
    """Canvas image (see ``ink_from_canvas``) -> MNIST-style ``Preprocessed``."""
    ink = ink_from_canvas(canvas)
    mask = ink > INK_THRESHOLD
    if mask.sum() < MIN_INK_PIXELS:
        return Preprocessed(None, "Nothing drawn yet: draw a digit on the canvas.")
    rows, cols = np.nonzero(mask)
    top, bottom, left, right = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    crop = ink[top:bottom, left:right]
    height, width = crop.shape
    scale = FIT_SIZE / max(height, width)
    new_h, new_w = max(1, round(height * scale)), max(1, round(width * scale))
    # Area averaging (BOX) is the anti-aliasing MNIST's grey levels come from.
    resized = np.asarray(
        Image.fromarray(np.clip(crop, 0, 255).astype(np.uint8)).resize((new_w, new_h), Image.Resampling.BOX),
        dtype=np.float32,
    )
    return Preprocessed(center_by_mass(resized), "", (int(top), int(left), int(bottom), int(right)))


def center_by_mass(digit: np.ndarray) -> np.ndarray:
    """Paste a small ink image into 28x28 so its centre of mass is at the centre.

    ``digit``: float ``[h, w]`` with h, w <= 28 -> uint8 ``[28, 28]``.
    """
    h, w = digit.shape
    total = digit.sum()
    if total <= 0:
        return np.zeros((FIELD_SIZE, FIELD_SIZE), np.uint8)
    ys, xs = np.mgrid[0:h, 0:w]
    com_y, com_x = (ys * digit).sum() / total, (xs * digit).sum() / total
    # MNIST's digits have their centre of mass at pixel (14, 14) on average
    # (measured on the training set: 13.996, 14.004); clamp so the digit stays inside.
    top = int(np.clip(round(FIELD_SIZE / 2 - com_y), 0, FIELD_SIZE - h))
    left = int(np.clip(round(FIELD_SIZE / 2 - com_x), 0, FIELD_SIZE - w))
    field = np.zeros((FIELD_SIZE, FIELD_SIZE), np.float32)
    field[top : top + h, left : left + w] = digit
    return np.clip(np.round(field), 0, 255).astype(np.uint8)


def naive_resize(canvas: np.ndarray) -> Preprocessed:
    """The baseline pipeline: shrink the whole canvas to 28x28 (no crop, no centring)."""
    ink = ink_from_canvas(canvas)
    if (ink > INK_THRESHOLD).sum() < MIN_INK_PIXELS:
        return Preprocessed(None, "Nothing drawn yet: draw a digit on the canvas.")
    whole = Image.fromarray(np.clip(ink, 0, 255).astype(np.uint8))
    small = whole.resize((FIELD_SIZE, FIELD_SIZE), Image.Resampling.BOX)
    return Preprocessed(np.asarray(small, dtype=np.uint8))
