"""Property-based tests (hypothesis): preprocessing over random canvases, the identities over random
inputs and random small networks.

The golden tests (tests/test_preprocess.py, test_embeddings.py,
test_logit_effects.py, test_grounding.py) check known answers on hand-built
and bundled networks; these check that the properties hold for *any* canvas,
image and architecture the generators can make: MLPs and CNNs built by
``mechmnistic.models.architectures.build_model`` from random configs, random
weights and random input normalisations.
"""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mechmnistic import run_with_cache, to_pixels
from mechmnistic.analysis.embeddings import hadamard_embeddings
from mechmnistic.analysis.grounding import effective_weights
from mechmnistic.analysis.logit_effects import logit_effects
from mechmnistic.models import Normalization, build_model, cnn_config, mlp_config
from mechmnistic.preprocess import (
    CANVAS_SIZE,
    FIELD_SIZE,
    FIT_SIZE,
    INK_THRESHOLD,
    MIN_INK_PIXELS,
    preprocess_drawing,
)

# -- canvases -----------------------------------------------------------------------------------------

#: Derandomized (the same examples on every run, no example database written): a failure always reproduces.
EXAMPLES = settings(max_examples=80, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


@st.composite
def drawings(draw, margin: int = 0) -> np.ndarray:
    """A white-on-black RGBA canvas with 1-6 random discs (strokes), kept ``margin`` pixels off the edges."""
    canvas = np.zeros((CANVAS_SIZE, CANVAS_SIZE, 4), np.uint8)
    canvas[..., 3] = 255
    ys, xs = np.mgrid[:CANVAS_SIZE, :CANVAS_SIZE]
    for _ in range(draw(st.integers(1, 6))):
        radius = draw(st.integers(0, 40))
        low, high = margin + radius, CANVAS_SIZE - 1 - margin - radius
        cy, cx = draw(st.integers(low, high)), draw(st.integers(low, high))
        level = draw(st.integers(0, 255))
        disc = (ys - cy) ** 2 + (xs - cx) ** 2 <= radius**2
        canvas[disc, :3] = np.maximum(canvas[disc, :3], level)
    return canvas


def _ink_pixels(canvas: np.ndarray) -> int:
    return int((canvas[..., :3].mean(axis=2) > INK_THRESHOLD).sum())


@EXAMPLES
@given(drawings())
def test_preprocessing_gives_an_mnist_digit_or_says_nothing_was_drawn(canvas):
    result = preprocess_drawing(canvas)
    if _ink_pixels(canvas) < MIN_INK_PIXELS:
        assert result.image is None and "Nothing drawn" in result.message
        return
    image = result.image
    assert image.shape == (FIELD_SIZE, FIELD_SIZE) and image.dtype == np.uint8  # so image / 255 lies in [0, 1]
    rows, cols = np.nonzero(image)
    if len(rows):  # faint ink can average away to nothing; otherwise it fits MNIST's 20x20 box
        assert rows.max() - rows.min() < FIT_SIZE and cols.max() - cols.min() < FIT_SIZE
        ys, xs = np.mgrid[:FIELD_SIZE, :FIELD_SIZE]
        mass = image / image.sum()
        com = np.array([(ys * mass).sum(), (xs * mass).sum()])
        # Centred by mass, unless that would push the digit out of the field (the documented clamp).
        touches_edge = rows.min() == 0 or cols.min() == 0 or rows.max() == 27 or cols.max() == 27
        assert touches_edge or np.abs(com - FIELD_SIZE / 2).max() <= 1.0


@EXAMPLES
@given(drawings(margin=20), st.integers(-20, 20), st.integers(-20, 20))
def test_preprocessing_does_not_depend_on_where_the_digit_was_drawn(canvas, dy, dx):
    moved = np.roll(canvas, (dy, dx), axis=(0, 1))  # the margin keeps every stroke on the canvas
    np.testing.assert_array_equal(_image(preprocess_drawing(moved)), _image(preprocess_drawing(canvas)))


@EXAMPLES
@given(drawings())
def test_preprocessing_reads_dark_ink_on_white_and_painted_transparency_alike(canvas):
    expected = _image(preprocess_drawing(canvas))
    dark_on_white = canvas.copy()
    dark_on_white[..., :3] = 255 - canvas[..., :3]
    painted = np.zeros_like(canvas)  # transparent background, the strokes' opacity is the ink
    painted[..., 3] = canvas[..., 0]
    painted[..., :3] = 255
    np.testing.assert_array_equal(_image(preprocess_drawing(dark_on_white)), expected)
    np.testing.assert_array_equal(_image(preprocess_drawing(painted)), expected)


def _image(result) -> np.ndarray | None:
    return None if result.image is None else result.image


# -- random networks ---------------------------------------------------------------------------------

NETS = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])


@st.composite
def networks(draw) -> torch.nn.Module:
    """A random small MLP or CNN with random weights and input normalisation."""
    normalization = Normalization(mean=draw(st.floats(-1, 1)), std=draw(st.floats(0.1, 2)))
    n_classes = draw(st.integers(2, 10))
    if draw(st.booleans()):
        config = mlp_config(hidden_sizes=tuple(draw(st.lists(st.integers(1, 12), min_size=1, max_size=3))),
                           n_classes=n_classes, normalization=normalization)
    else:
        depth = draw(st.integers(1, 2))
        config = cnn_config(conv_channels=tuple(draw(st.lists(st.integers(1, 4), min_size=depth, max_size=depth))),
                           kernel_sizes=tuple(draw(st.lists(st.sampled_from([3, 5]), min_size=depth,
                                                            max_size=depth))),
                           fc_sizes=tuple(draw(st.lists(st.integers(1, 8), max_size=1))),
                           n_classes=n_classes, normalization=normalization)
    torch.manual_seed(draw(st.integers(0, 2**31 - 1)))
    model = build_model(config).eval()
    with torch.no_grad():  # larger biases than the default init, so units are both on and off
        for name, parameter in model.named_parameters():
            if name.endswith("bias"):
                parameter.uniform_(-0.5, 0.5)
    return model


@st.composite
def images(draw) -> np.ndarray:
    """1-3 uint8 images, each blank, sparse (ink on a few pixels, as MNIST) or dense noise."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    batch = []
    for _ in range(draw(st.integers(1, 3))):
        density = draw(st.sampled_from([0.0, 0.05, 0.2, 1.0]))
        batch.append(rng.integers(0, 256, (28, 28)) * (rng.random((28, 28)) < density))
    return np.stack(batch).astype(np.uint8)


def _unit_pre(model, layer: str, batch: np.ndarray) -> np.ndarray:
    """The forward pass's pre-activations ``[N, U]``: FC units, or conv channels at their maxima."""
    _, cache = run_with_cache(model, batch, names=[f"{layer}.pre"])
    pre = cache[f"{layer}.pre"]
    return (pre.flatten(2).max(dim=2).values if pre.dim() == 4 else pre).double().numpy()


def _close(actual: np.ndarray, expected: np.ndarray) -> None:
    """Equal up to float32 rounding, relative to the size of the numbers involved."""
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-4 * (1 + np.abs(expected).max()))


@NETS
@given(networks(), images())
def test_hadamard_embeddings_plus_bias_are_the_pre_activations(model, batch):
    for layer in model.layer_names:
        embedded = hadamard_embeddings(model, layer, batch)
        _close(embedded.pre_activation, _unit_pre(model, layer, batch))


@NETS
@given(networks(), images())
def test_logit_effects_plus_bias_are_the_logits(model, batch):
    for image in batch:
        effects = logit_effects(model, image)
        logits = model(to_pixels(image)).detach().double().numpy()[0]
        _close(effects.effects.sum(axis=1), logits)
        _close(effects.logits, logits)


@NETS
@given(networks(), images())
def test_effective_weights_reproduce_every_units_pre_activation(model, batch):
    for layer in model.layer_names:
        grounding = effective_weights(model, layer, batch)
        expected = _unit_pre(model, layer, batch)
        _close(grounding.pre, expected)
        _close(grounding.reconstruct(batch), expected)  # w_eff · x + b_eff, computed afresh from the pixels
