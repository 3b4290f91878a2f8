"""Hand-built tiny networks whose every activation can be worked out on paper.

``pixel_mlp``: hidden unit k reads pixel k (row 0, column k) with weight 1 and
no bias, so on images in [0, 1] its activation is that pixel; the two logits
are fixed linear functions of the three units:

    logit0 = h0 + 2 h1 + 3 h2
    logit1 = -h0 + h1 + 0.5

``images_with(first_pixels)`` builds images whose first pixels are given.
"""

from __future__ import annotations

import numpy as np
import torch

from mechmnistic.models import build_model, cnn_config, mlp_config

OUT_WEIGHT = np.array([[1.0, 2.0, 3.0], [-1.0, 1.0, 0.0]])
OUT_BIAS = np.array([0.0, 0.5])


def pixel_mlp():
    model = build_model(mlp_config(hidden_sizes=(3,), n_classes=2))
    with torch.no_grad():
        first, out = model.get_submodule("layers.0"), model.get_submodule("layers.1")
        first.weight.zero_()
        first.bias.zero_()
        for k in range(3):
            first.weight[k, k] = 1.0
        out.weight.copy_(torch.tensor(OUT_WEIGHT))
        out.bias.copy_(torch.tensor(OUT_BIAS))
    return model


def expected_logits(hidden: np.ndarray) -> np.ndarray:
    """``pixel_mlp``'s logits for hidden activations ``[N, 3]``."""
    return np.asarray(hidden, dtype=np.float64) @ OUT_WEIGHT.T + OUT_BIAS


def images_with(first_pixels) -> np.ndarray:
    """Float images ``[N, 28, 28]`` in [0, 1] whose row-0 pixels start with ``first_pixels[i]``."""
    rows = np.atleast_2d(np.asarray(first_pixels, dtype=np.float32))
    images = np.zeros((len(rows), 28, 28), np.float32)
    images[:, 0, : rows.shape[1]] = rows
    return images


def scaling_cnn():
    """1x1 conv with two channels (x and 2x), 2x2 max-pool, then logit c = sum of channel c's pooled map."""
    model = build_model(cnn_config(conv_channels=(2,), kernel_sizes=(1,), fc_sizes=(), n_classes=2))
    with torch.no_grad():
        conv, out = model.get_submodule("conv1"), model.get_submodule("fc1")
        conv.weight.copy_(torch.tensor([1.0, 2.0]).reshape(2, 1, 1, 1))
        conv.bias.zero_()
        out.weight.zero_()
        out.weight[0, : 14 * 14] = 1.0
        out.weight[1, 14 * 14 :] = 1.0
        out.bias.copy_(torch.tensor([0.25, -0.25]))
    return model
