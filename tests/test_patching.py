"""Patching machinery: the fast downstream path equals the full forward pass; hooks never leak."""

import numpy as np
import pytest
import torch

from mechmnistic import run_with_cache
from mechmnistic.analysis.patching import logits_from_activations, run_patched
from mechmnistic.analysis.units import UnitError
from mechmnistic.errors import MechMNISTicError


@pytest.mark.parametrize("name, layer", [("mlp-2x64", "layers.0"), ("mlp-2x64", "layers.1"),
                                         ("challenge-cnn", "fc1"), ("cnn-digits", "fc2")])
def test_logits_from_activations_equal_the_models_logits(bundled, mnist_test, name, layer):
    model = bundled(name)
    images = mnist_test.images[:300]
    hook = f"{layer}.post" if f"{layer}.post" in model.hook_names else f"{layer}.pre"
    logits, cache = run_with_cache(model, images, names=[hook])
    np.testing.assert_allclose(logits_from_activations(model, layer, cache[hook]).numpy(), logits.numpy(),
                               atol=1e-5)


def test_identity_patch_changes_nothing_and_leaves_no_hook(bundled, mnist_test):
    model = bundled("cnn-digits")
    images = mnist_test.images[:100]
    patched = run_patched(model, images, "conv2", lambda start, stop, a: a, batch_size=32)
    np.testing.assert_allclose(patched.numpy(), run_with_cache(model, images, names=[])[0].numpy(), atol=1e-6)
    assert all(not point._forward_hooks for point in model.hook_points.values())


def test_a_failing_patch_still_removes_its_hook(bundled, mnist_test):
    model = bundled("mlp-1x64")

    def broken(start, stop, activation):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        run_patched(model, mnist_test.images[:5], "layers.0", broken)
    assert all(not point._forward_hooks for point in model.hook_points.values())


def test_patch_sees_the_right_window(bundled, mnist_test):
    model = bundled("mlp-1x64")
    windows = []

    def record(start, stop, activation):
        windows.append((start, stop, activation.shape[0]))
        return activation

    run_patched(model, mnist_test.images[:250], "layers.0", record, batch_size=100)
    assert windows == [(0, 100, 100), (100, 200, 100), (200, 250, 50)]


def test_layer_checks(bundled):
    model = bundled("challenge-cnn")
    assert model.layout["fc1"].n_units == 200 and model.layout["conv2"].n_units == 16
    with pytest.raises(UnitError, match="no layer 'fc9' in this model; its layers are conv1, conv2, fc1, fc2"):
        model.layout.check("fc9")
    with pytest.raises(MechMNISTicError, match="conv layer"):
        logits_from_activations(model, "conv2", torch.zeros(1, 16, 11, 11))
