"""A model's predictions over a whole MNIST split, and ways to pick examples from it.

Predictions (the logits of every image) are computed once per model and split
and cached on disk (``mechmnistic.cache``). The *label* of an image is what
the model was trained to output for it: the digit for a digits model, the
card's labelling function otherwise (``mechmnistic.labels``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..cache import cached, is_cached
from ..data import Split, load_mnist
from ..errors import MechMNISTicError
from ..hooks import run_with_cache
from ..labels import apply_label_function
from ..models.architectures import MNISTNet

_ANALYSIS = "predictions"


@dataclass(frozen=True)
class Predictions:
    """``logits``: float32 ``[N, C]``; ``predicted``: int64 ``[N]`` (argmax); ``labels``: int64 ``[N]``."""

    split: str
    logits: np.ndarray
    labels: np.ndarray

    @property
    def predicted(self) -> np.ndarray:
        return self.logits.argmax(axis=1)

    @property
    def confidence(self) -> np.ndarray:
        """float32 ``[N]``: the softmax probability of the predicted class."""
        shifted = self.logits - self.logits.max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        return (exp.max(axis=1) / exp.sum(axis=1)).astype(np.float32)

    @property
    def accuracy(self) -> float:
        return float((self.predicted == self.labels).mean())


def model_labels(model: MNISTNet, split: Split) -> np.ndarray:
    """int64 ``[N]``: the labels ``model`` was trained to give ``split``'s images (digits when it has no card)."""
    images, digits = load_mnist(split)
    card = getattr(model, "card", None)
    spec = card.label_function if card is not None else {"name": "digits"}
    return apply_label_function(spec, images, digits)


def predictions_are_cached(model: MNISTNet, split: Split = "test") -> bool:
    """Whether ``split_logits`` (and so ``split_predictions``) will read from disk."""
    return is_cached(model, _ANALYSIS, {"split": split})


def split_logits(model: MNISTNet, split: Split = "test") -> np.ndarray:
    """float32 ``[N, C]``: ``model``'s logits on every image of ``split``, cached on disk (the one copy: the last
    layer's activations are these)."""
    images = load_mnist(split).images

    def compute() -> dict[str, np.ndarray]:
        logits, _ = run_with_cache(model, images, names=[])
        return {"logits": logits.numpy().astype(np.float32)}

    return cached(model, _ANALYSIS, {"split": split}, compute)["logits"]


def predicted_classes(model: MNISTNet, split: Split = "test") -> np.ndarray:
    """int64 ``[N]``: the class ``model`` predicts for every image of ``split`` (whatever its labels)."""
    return split_logits(model, split).argmax(axis=1).astype(np.int64)


def split_predictions(model: MNISTNet, split: Split = "test") -> Predictions:
    """``model``'s logits on every image of ``split``, with the labels it was trained to give them (raises
    ``UnknownLabelsError`` for a model imported without a labelling function)."""
    return Predictions(split, split_logits(model, split), model_labels(model, split))


def misclassified(predictions: Predictions) -> np.ndarray:
    """int64 ``[M]``: indices the model gets wrong, most confidently wrong first."""
    wrong = np.flatnonzero(predictions.predicted != predictions.labels)
    order = np.argsort(-predictions.confidence[wrong], kind="stable")
    return wrong[order].astype(np.int64)


def indices_of_digit(split: Split, digit: int) -> np.ndarray:
    """int64 ``[K]``: indices of ``split``'s images of ``digit`` (MNIST's own label), in order."""
    if not 0 <= int(digit) <= 9:
        raise MechMNISTicError(f"digit must be 0–9, got {digit}")
    return np.flatnonzero(load_mnist(split).labels == int(digit)).astype(np.int64)


def example(split: Split, index: int) -> tuple[np.ndarray, int]:
    """``split``'s image ``index`` (uint8 ``[28, 28]``) and its MNIST digit label."""
    images, digits = load_mnist(split)
    if not 0 <= int(index) < len(images):
        raise MechMNISTicError(f"{split} index {index} is out of range (0–{len(images) - 1})")
    return images[int(index)], int(digits[int(index)])
