"""Labelling functions: what a model is trained to output for an image.

``digits`` is MNIST's own labels; ``unknown`` marks an imported model whose
training labels we were not told (its accuracy cannot be measured). ``template-band`` is the EIS VII challenge's
kind of secret rule: score each image by its similarity to a template,
``s(x) = sum(x * (t - c))`` with ``x`` and ``t`` in [0, 1], and label it
``inside_label`` when ``low < s < high``, else ``outside_label``.

A label function is stored in a model card as a plain dict, e.g.
``{"name": "template-band", "template": "train:6", "center": 0.5,
"low": -33.93, "high": -15.22, "inside_label": 0, "outside_label": 1}``.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from .data import load_mnist
from .errors import MechMNISTicError

_TEMPLATE_REF = re.compile(r"^(train|test):(\d+)$")


def template_image(ref: str) -> np.ndarray:
    """``"train:6"`` / ``"test:17"`` -> that MNIST image as float32 ``[28, 28]`` in [0, 1]."""
    match = _TEMPLATE_REF.match(str(ref).strip())
    if not match:
        raise ValueError(f"template must look like 'train:N' or 'test:N', got {ref!r}")
    split, index = match.group(1), int(match.group(2))
    images = load_mnist(split).images
    if not 0 <= index < len(images):
        raise ValueError(f"template index {index} is out of range for {split} (0..{len(images) - 1})")
    return images[index].astype(np.float32) / 255.0


def template_similarity(images01: np.ndarray, template01: np.ndarray, center: float = 0.5) -> np.ndarray:
    """``s(x) = sum(x * (t - c))`` per image: float64 ``[N]`` for images ``[N, 28, 28]`` in [0, 1].

    Computed in float64 so that scores near a threshold are not flipped by
    rounding.
    """
    weights = (np.asarray(template01, dtype=np.float64) - center).reshape(-1)
    flat = np.asarray(images01).reshape(len(images01), -1)
    return flat.astype(np.float64) @ weights


def band_labels(
    scores: np.ndarray, low: float, high: float, inside_label: int = 0, outside_label: int = 1
) -> np.ndarray:
    """``inside_label`` where ``low < score < high``, else ``outside_label`` (int64 ``[N]``)."""
    inside = (scores > low) & (scores < high)
    return np.where(inside, inside_label, outside_label).astype(np.int64)


CHALLENGE_LABEL_FUNCTION: dict[str, Any] = {
    "name": "template-band",
    "template": "train:6",
    "center": 0.5,
    "low": -33.93,
    "high": -15.22,
    "inside_label": 0,
    "outside_label": 1,
    "hidden": True,
    "note": "EIS VII MNIST CNN challenge: label 0 when -33.93 < sum(x * (t - 0.5)) < -15.22, "
    "t = train image 6 (a '1') in [0, 1]; else 1.",
}


class UnknownLabelsError(MechMNISTicError, ValueError):
    """The model's labels are unknown, so there is nothing to compare its predictions with."""


def apply_label_function(spec: dict[str, Any], images: np.ndarray, digit_labels: np.ndarray) -> np.ndarray:
    """Labels for ``images`` (uint8 ``[N,28,28]``) under the card's label function."""
    name = spec.get("name", "digits")
    if name == "digits":
        return np.asarray(digit_labels, dtype=np.int64)
    if name == "template-band":
        pixels = images.astype(np.float32) / 255.0
        scores = template_similarity(pixels, template_image(spec["template"]), spec["center"])
        return band_labels(scores, spec["low"], spec["high"], spec["inside_label"], spec["outside_label"])
    if name == "unknown":
        raise UnknownLabelsError("this model's labels are unknown (it was imported without a labelling function)")
    raise ValueError(f"unknown label function {name!r}")


def label_function_summary(spec: dict[str, Any]) -> str:
    """A one-line description that does not give a hidden answer away."""
    if spec.get("name", "digits") == "digits":
        return "MNIST digit labels (0-9)"
    if spec.get("name") == "unknown":
        return "unknown labels (imported)"
    if spec.get("hidden"):
        return "a secret binary labelling function (reveal it in the circuit lab's walkthrough)"
    return spec.get("note") or spec["name"]
