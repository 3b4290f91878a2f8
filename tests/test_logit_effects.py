"""Logit effects: rows sum to the logits, shares pick the important units, combined embeddings sum exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mechmnistic import run_with_cache
from mechmnistic.analysis.logit_effects import (
    FinalLayer,
    combined_embedding,
    explain_class,
    important_units,
    logit_effects,
    pixel_view,
)
from mechmnistic.errors import MechMNISTicError
from mechmnistic.models import build_model, cnn_config, mlp_config

from .conftest import BUNDLED_MODELS


@pytest.fixture
def hand_built():
    """784 -> 3 -> 2 with weights chosen so every number below is worked out by hand (and exact in floats).

    On the image with pixel (0,0) = 1 and (0,1) = 0.5:
    unit 0: 2*1 + 0.5 = 2.5; unit 1: -4*0.5 = -2 -> ReLU 0; unit 2: 1 + 0.5 - 0.25 = 1.25.
    So h = [2.5, 0, 1.25] and, with W = [[1, 3, -2], [-0.5, 1, 4]], b = [0.25, -1]:
    class 0: effects [2.5, 0, -2.5 | 0.25] -> logit 0.25; class 1: [-1.25, 0, 5 | -1] -> logit 2.75.
    """
    model = build_model(mlp_config(hidden_sizes=(3,), n_classes=2))
    with torch.no_grad():
        first, last = model.get_submodule("layers.0"), model.get_submodule("layers.1")
        first.weight.zero_()
        first.weight[0, 0] = 2.0
        first.weight[1, 1] = -4.0
        first.weight[2, 0] = 1.0
        first.weight[2, 1] = 1.0
        first.bias.copy_(torch.tensor([0.5, 0.0, -0.25]))
        last.weight.copy_(torch.tensor([[1.0, 3.0, -2.0], [-0.5, 1.0, 4.0]]))
        last.bias.copy_(torch.tensor([0.25, -1.0]))
    image = np.zeros((28, 28), np.float32)
    image[0, 0], image[0, 1] = 1.0, 0.5
    return model, image


def test_hand_built_effects_are_the_worked_out_numbers(hand_built):
    model, image = hand_built
    effects = logit_effects(model, image)
    np.testing.assert_array_equal(effects.activations, [2.5, 0.0, 1.25])
    np.testing.assert_array_equal(effects.effects, [[2.5, 0.0, -2.5, 0.25], [-1.25, 0.0, 5.0, -1.0]])
    np.testing.assert_array_equal(effects.logits, [0.25, 2.75])
    np.testing.assert_array_equal(effects.effects.sum(axis=1), effects.logits)
    assert effects.prediction == 1
    np.testing.assert_allclose(effects.probabilities, [1 / (1 + np.exp(2.5)), 1 / (1 + np.exp(-2.5))])
    assert effects.layer.name == "layers.1" and effects.layer.unit_layer == "layers.0"


def test_hand_built_shares_and_important_units(hand_built):
    model, image = hand_built
    effects = logit_effects(model, image)
    # class 1: total |effect| = 1.25 + 0 + 5 + 1 = 7.25 (the bias counts)
    np.testing.assert_allclose(effects.shares(1), [1.25 / 7.25, 0.0, 5 / 7.25])
    assert important_units(effects, 1, share=0.2).tolist() == [2]
    assert important_units(effects, 1, share=0.1).tolist() == [2, 0], "largest |effect| first"
    assert important_units(effects, 1, share=0.9).tolist() == []
    assert important_units(effects, 0, share=0.0).tolist() == [0, 2], "a zero effect is never important"


def test_hand_built_combined_embedding(hand_built):
    model, image = hand_built
    effects = logit_effects(model, image)
    explanation = explain_class(model, image, effects, cls=1, share=0.1)
    assert [u.unit for u in explanation.units] == [2, 0]
    assert explanation.units[0].effect == 5.0 and explanation.units[0].output_weight == 4.0
    assert explanation.units[1].activation == 2.5
    # Every unit: a = [-0.5, 0 (unit 1 is off), 4]; unit 0's map is 2 at (0,0), unit 2's is 1 at (0,0), 0.5 at (0,1).
    every = explanation.combined_all
    assert every.map[0, 0] == 3.0 and every.map[0, 1] == 2.0 and every.map.sum() == 5.0
    assert every.bias == -0.5 * 0.5 + 4 * -0.25
    assert every.map.sum() + every.bias == every.total_effect == 3.75
    assert every.map.sum() + every.bias + effects.bias[1] == effects.logits[1]
    # The important units are the same two here (unit 1 has no effect), so the same map.
    np.testing.assert_array_equal(explanation.combined.map, every.map)
    np.testing.assert_array_equal(explanation.pixels.maps[0][0, :2], [1.0, 0.5])
    np.testing.assert_array_equal(explanation.pixels.weights[1][0, :2], [2.0, 0.0])


def test_bad_class_and_share_are_refused(hand_built):
    model, image = hand_built
    effects = logit_effects(model, image)
    for cls in (-1, 2, 10**9):
        with pytest.raises(MechMNISTicError):
            important_units(effects, cls)
    for share in (-0.1, 1.5):
        with pytest.raises(MechMNISTicError):
            important_units(effects, 0, share)


def test_identities_on_the_default_model(bundled, mnist_test):
    model = bundled("mlp-1x64")
    for index in range(0, 10_000, 997):
        image = mnist_test.images[index]
        effects = logit_effects(model, image)
        logits, cache = run_with_cache(model, image[None], names=["layers.0.post"])
        np.testing.assert_allclose(effects.effects.sum(axis=1), effects.logits, atol=1e-5)
        np.testing.assert_allclose(effects.logits, logits[0].numpy(), atol=1e-6)
        np.testing.assert_allclose(effects.activations, cache["layers.0.post"][0].numpy(), atol=1e-7)
        assert effects.probabilities.sum() == pytest.approx(1.0)
        for cls in (effects.prediction, (effects.prediction + 1) % 10):
            explanation = explain_class(model, image, effects, cls)
            shares = effects.shares(cls)
            chosen = [u.unit for u in explanation.units]
            assert all(shares[u] > 0.025 for u in chosen)
            assert sorted(set(range(64)) - set(chosen)) == [u for u in range(64) if shares[u] <= 0.025]
            every, important = explanation.combined_all, explanation.combined
            assert every.map.sum() + every.bias + effects.bias[cls] == pytest.approx(effects.logits[cls], abs=1e-4)
            assert important.map.sum() + important.bias == pytest.approx(
                effects.unit_effects[cls, chosen].sum(), abs=1e-4)
            # Each unit's embedding sums with its bias to its pre-activation.
            view = explanation.pixels
            np.testing.assert_allclose(view.maps.sum(axis=(1, 2)) + view.bias,
                                       _pre(model, image)[chosen], atol=1e-4)


def _pre(model, image) -> np.ndarray:
    _, cache = run_with_cache(model, image[None], names=["layers.0.pre"])
    return cache["layers.0.pre"][0].numpy()


@pytest.mark.parametrize("name", BUNDLED_MODELS)
def test_identities_on_every_bundled_model(name, bundled, mnist_test):
    """Any depth, MLP or CNN: effects sum to the logits, embeddings to the unit layer's pre-activations,
    combined embeddings to the units' total effect and, with every unit, to the logit."""
    model = bundled(name)
    final = FinalLayer.of(model)
    assert final.units_are_neurons and final.unit_layer == model.layer_names[-2]
    for image in mnist_test.images[:4]:
        effects = logit_effects(model, image)
        assert effects.effects.shape == (model.n_classes, final.n_units + 1)
        np.testing.assert_allclose(effects.effects.sum(axis=1), effects.logits, atol=1e-5)
        _, cache = run_with_cache(model, image[None], names=[f"{final.unit_layer}.pre"])
        pre = cache[f"{final.unit_layer}.pre"][0].numpy()
        for cls in {effects.prediction, (effects.prediction + 1) % model.n_classes}:
            explanation = explain_class(model, image, effects, cls)
            view, every = explanation.pixels, explanation.combined_all
            np.testing.assert_allclose(view.maps.sum(axis=(1, 2)) + view.bias, pre[view.units], atol=1e-4)
            assert every.map.sum() + every.bias + effects.bias[cls] == pytest.approx(effects.logits[cls], abs=1e-4)
            chosen = [u.unit for u in explanation.units]
            assert explanation.combined.map.sum() + explanation.combined.bias == pytest.approx(
                effects.unit_effects[cls, chosen].sum(), abs=1e-4)
            # Where the digit has no ink, no pixel contributes.
            assert np.all(every.map[image == 0] == 0)


def test_a_cnn_without_hidden_fc_layers_reads_pooled_maps():
    model = build_model(cnn_config(conv_channels=(2,), kernel_sizes=(3,), fc_sizes=()))
    image = np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)
    effects = logit_effects(model, image)
    final = effects.layer
    assert final.input_hook == "conv1.pool" and not final.units_are_neurons and final.n_units == 2 * 13 * 13
    np.testing.assert_allclose(effects.effects.sum(axis=1), effects.logits, atol=1e-5)
    with pytest.raises(MechMNISTicError, match="no Hadamard embedding"):
        pixel_view(model, image, np.arange(3))
    explanation = explain_class(model, image, effects, effects.prediction)
    assert explanation.pixels is None and "Hadamard" in explanation.pixels_note


def test_combined_embedding_of_no_units_is_empty(hand_built):
    model, image = hand_built
    effects = logit_effects(model, image)
    view = pixel_view(model, image, np.array([], dtype=np.int64))
    combined = combined_embedding(effects, view, 0)
    assert combined.map.shape == (28, 28) and combined.map.sum() == 0 and combined.total_effect == 0
