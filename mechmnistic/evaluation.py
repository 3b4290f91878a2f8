"""Re-checking a model's claimed metrics against the real MNIST test set."""

from __future__ import annotations

from typing import Any

import numpy as np

from .data import load_mnist
from .hooks import predict
from .labels import apply_label_function
from .models import load_model
from .models.architectures import MNISTNet


def evaluate(model: str | MNISTNet) -> dict[str, Any]:
    """Test (and train) accuracy on the model's own labels, beside its card's claims."""
    net = load_model(model) if isinstance(model, str) else model
    card = net.card
    result: dict[str, Any] = {"model": card.name}
    for split in ("test", "train"):
        images, digits = load_mnist(split)
        labels = apply_label_function(card.label_function, images, digits)
        result[f"{split}_accuracy"] = float((predict(net, images) == labels).mean())
    result["card_test_accuracy"] = card.metrics.get("test_accuracy")
    result["matches_card"] = bool(np.isclose(result["test_accuracy"], result["card_test_accuracy"] or -1, atol=1e-9))
    return result
