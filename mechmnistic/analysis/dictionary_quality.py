"""How good a dictionary is, measured: reconstruction, sparsity, dead and dense latents, and the spliced model.

On the test set (one row per image, or per (image, position) for a conv layer):

* ``variance_explained``: ``1 - sum ||x - x_hat||^2 / sum ||x - mean(x)||^2``;
* ``l0``: the mean number of latents above zero per row;
* ``model_accuracy`` / ``spliced_accuracy``: the model's accuracy on its own
  labels, and with the layer replaced by the reconstruction (no error term);
  ``spliced_agreement``: how often the spliced model predicts what the model does;
* ``kl``: the mean KL divergence ``KL(model || spliced)`` of the softmaxes.

On the training set: ``dead`` latents never fire (on any row), ``dense`` ones
fire on more than ``DENSE_FRACTION`` (10%) of rows. For a conv layer's
dictionary, the training rows are every position of at most
``MAX_FIRING_ROWS`` worth of images (the first ones; the count is reported).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..data import load_mnist
from ..dictionaries.dictionary import Dictionary
from ..hooks import eval_mode, hooks, to_pixels
from ..labels import UnknownLabelsError, apply_label_function
from ..models.architectures import MNISTNet
from ..threads import one_thread
from .activations import layer_activations
from .latents import layer_batches

DENSE_FRACTION = 0.1
MAX_FIRING_ROWS = 4_000_000


@dataclass(frozen=True, eq=False)
class DictionaryQuality:
    """The measurements of the module docstring; ``firing_frequency`` float64 ``[d_sae]`` (training rows)."""

    variance_explained: float
    mse: float
    l0: float
    dead_count: int
    dense_count: int
    d_sae: int
    model_accuracy: float | None
    spliced_accuracy: float | None
    spliced_agreement: float
    kl: float
    n_test_rows: int
    n_train_rows: int
    n_train_images: int
    firing_frequency: np.ndarray

    @property
    def dead_fraction(self) -> float:
        return self.dead_count / self.d_sae

    @property
    def dense_fraction(self) -> float:
        return self.dense_count / self.d_sae

    def to_dict(self) -> dict[str, Any]:
        """The numbers (what a card's ``metrics`` and ``mechmnistic sae eval --json`` hold)."""
        return {"variance_explained": self.variance_explained, "mse": self.mse, "l0": self.l0,
                "dead_count": self.dead_count, "dead_fraction": self.dead_fraction,
                "dense_count": self.dense_count, "dense_fraction": self.dense_fraction,
                "dense_threshold": DENSE_FRACTION, "model_accuracy": self.model_accuracy,
                "spliced_accuracy": self.spliced_accuracy, "spliced_agreement": self.spliced_agreement,
                "kl": self.kl, "n_test_rows": self.n_test_rows, "n_train_rows": self.n_train_rows,
                "n_train_images": self.n_train_images, "split": "test"}


def _labels(model: MNISTNet, split: str) -> np.ndarray | None:
    card = getattr(model, "card", None)
    images, digits = load_mnist(split)
    try:
        return apply_label_function(card.label_function if card is not None else {"name": "digits"}, images, digits)
    except UnknownLabelsError:
        return None


def firing_frequency(model: MNISTNet, dictionary: Dictionary, max_rows: int = MAX_FIRING_ROWS,
                     chunk: int = 8192) -> tuple[np.ndarray, int, int]:
    """How often each latent fires (is above zero) over the training rows: ``(frequency [d_sae], rows, images)``."""
    counts = torch.zeros(dictionary.d_sae, dtype=torch.float64)
    unit_layer = model.layout[dictionary.layer]
    if not unit_layer.is_conv:
        values = torch.from_numpy(np.asarray(layer_activations(model, dictionary.layer, "train").values))
        for start in range(0, len(values), chunk):
            counts += (dictionary.encode(values[start : start + chunk]) > 0).sum(0)
        return (counts / len(values)).numpy(), len(values), len(values)
    images = load_mnist("train").images
    positions = int(np.prod(unit_layer.pre_shape[1:]))
    images = images[: max(1, min(len(images), max_rows // positions))]
    rows = 0
    for _start, activation in layer_batches(model, dictionary.layer, images, batch_size=max(1, chunk // positions)):
        fired = dictionary.encode(dictionary.rows_of(activation)) > 0
        counts += fired.sum(0)
        rows += len(fired)
    return (counts / max(rows, 1)).numpy(), rows, len(images)


def dictionary_quality(model: MNISTNet, dictionary: Dictionary, batch_size: int = 1000,
                       max_firing_rows: int = MAX_FIRING_ROWS) -> DictionaryQuality:
    """Measure ``dictionary`` on ``model`` (see the module docstring)."""
    dictionary.check_model(model)
    images = load_mnist("test").images
    labels = _labels(model, "test")
    stats = {"sq_error": 0.0, "sum": torch.zeros(dictionary.d_in, dtype=torch.float64), "sq_norm": 0.0,
             "rows": 0, "active": 0.0}

    def measure_and_splice(activation: torch.Tensor) -> torch.Tensor:
        rows = dictionary.rows_of(activation)
        latents = dictionary.encode(rows)
        recon = dictionary.decode(latents)  # what splice(dictionary, activation) puts in, without encoding twice
        rows64 = rows.double()
        stats["sq_error"] += float((rows64 - recon.double()).pow(2).sum())
        stats["sum"] += rows64.sum(0)
        stats["sq_norm"] += float(rows64.pow(2).sum())
        stats["rows"] += len(rows)
        stats["active"] += float((latents > 0).sum())
        return dictionary.layer_of(recon, activation)

    clean, spliced = [], []
    pixels = to_pixels(images)
    batch_size = dictionary.images_per_batch(model, batch_size)
    with one_thread(), torch.inference_mode(), eval_mode(model):
        for start in range(0, len(pixels), batch_size):
            batch = pixels[start : start + batch_size]
            clean.append(model(batch))
            with hooks(model, {dictionary.hook: measure_and_splice}):
                spliced.append(model(batch))
        frequency, n_train_rows, n_train_images = firing_frequency(model, dictionary, max_firing_rows)
    clean_logits, spliced_logits = torch.cat(clean).double(), torch.cat(spliced).double()
    n = stats["rows"]
    total_variance = stats["sq_norm"] - float(stats["sum"].pow(2).sum()) / n
    log_p, log_q = torch.log_softmax(clean_logits, 1), torch.log_softmax(spliced_logits, 1)
    kl = float((log_p.exp() * (log_p - log_q)).sum(1).mean())
    predictions, spliced_predictions = clean_logits.argmax(1).numpy(), spliced_logits.argmax(1).numpy()
    return DictionaryQuality(
        variance_explained=1.0 - stats["sq_error"] / total_variance if total_variance > 0 else math.nan,
        mse=stats["sq_error"] / n,
        l0=stats["active"] / n,
        dead_count=int((frequency == 0).sum()),
        dense_count=int((frequency > DENSE_FRACTION).sum()),
        d_sae=dictionary.d_sae,
        model_accuracy=None if labels is None else float((predictions == labels).mean()),
        spliced_accuracy=None if labels is None else float((spliced_predictions == labels).mean()),
        spliced_agreement=float((predictions == spliced_predictions).mean()),
        kl=kl,
        n_test_rows=n,
        n_train_rows=n_train_rows,
        n_train_images=n_train_images,
        firing_frequency=frequency,
    )
