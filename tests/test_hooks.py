"""Activation capture: names and shapes, exact recomputation from weights, no leaked hooks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mechmnistic import run_with_cache
from mechmnistic.hooks import hooks, to_pixels
from mechmnistic.models import build_model, cnn_config, mlp_config

from .conftest import BUNDLED_MODELS


def _no_hooks_left(model):
    return all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_hand_built_mlp_gives_the_worked_out_activations():
    model = build_model(mlp_config(hidden_sizes=(2,), n_classes=2))
    with torch.no_grad():
        w = torch.zeros(2, 784)
        w[0, 0] = 1.0  # unit 0 reads pixel (0, 0)
        w[1, 1] = -1.0  # unit 1 reads minus pixel (0, 1)
        model.layers[0].weight.copy_(w)
        model.layers[0].bias.copy_(torch.tensor([0.5, 0.25]))
        model.layers[1].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 2.0]]))
        model.layers[1].bias.zero_()
    image = np.zeros((1, 28, 28), np.uint8)
    image[0, 0, 0] = 255
    image[0, 0, 1] = 51  # 0.2
    logits, cache = run_with_cache(model, image)
    assert torch.allclose(cache["layers.0.pre"], torch.tensor([[1.5, 0.05]]))
    assert torch.allclose(cache["layers.0.post"], torch.tensor([[1.5, 0.05]]))
    assert torch.allclose(logits, torch.tensor([[1.5, 0.1]]))


def _recompute(model, cache, name):
    """A layer's pre-activation from its weights and the previous tensor in the cache."""
    names = list(model.layer_names)
    i = names.index(name)
    layer = model.get_submodule(name)
    if isinstance(layer, torch.nn.Conv2d):
        source = cache["input"] if i == 0 else cache[f"{names[i - 1]}.pool"]
        return F.conv2d(source, layer.weight, layer.bias)
    prev = names[i - 1] if i else None
    if prev is None:
        source = cache["input"].flatten(1)
    elif isinstance(model.get_submodule(prev), torch.nn.Conv2d):
        source = cache[f"{prev}.pool"].flatten(1)
    else:
        source = cache[f"{prev}.post"]
    return source @ layer.weight.T + layer.bias


@pytest.mark.parametrize("name", BUNDLED_MODELS)
def test_every_layer_recomputes_from_weights(name, bundled, mnist_test):
    model = bundled(name)
    logits, cache = run_with_cache(model, mnist_test.images[:256])
    assert list(cache) == model.hook_names
    for layer in model.layer_names:
        assert torch.allclose(_recompute(model, cache, layer), cache[f"{layer}.pre"], atol=1e-5)
        if f"{layer}.post" in cache:
            assert torch.equal(cache[f"{layer}.post"], cache[f"{layer}.pre"].clamp(min=0))
        if f"{layer}.pool" in cache:
            assert torch.equal(cache[f"{layer}.pool"], F.max_pool2d(cache[f"{layer}.post"], 2))
    assert torch.equal(logits, cache[f"{model.layer_names[-1]}.pre"])
    assert _no_hooks_left(model)


def test_shapes_are_documented_by_the_cache(bundled, mnist_test):
    _, cache = run_with_cache(bundled("challenge-cnn"), mnist_test.images[:3])
    shapes = {k: tuple(v.shape) for k, v in cache.items()}
    assert shapes == {
        "input": (3, 1, 28, 28),
        "conv1.pre": (3, 8, 26, 26), "conv1.post": (3, 8, 26, 26), "conv1.pool": (3, 8, 13, 13),
        "conv2.pre": (3, 16, 11, 11), "conv2.post": (3, 16, 11, 11), "conv2.pool": (3, 16, 5, 5),
        "fc1.pre": (3, 200), "fc1.post": (3, 200), "fc2.pre": (3, 2),
    }
    assert "conv1.pool" in cache.describe()


def test_uint8_and_float_inputs_agree(bundled, mnist_test):
    model = bundled("mlp-1x64")
    a, _ = run_with_cache(model, mnist_test.images[:10])
    b, _ = run_with_cache(model, mnist_test.images[:10].astype(np.float32) / 255)
    c, _ = run_with_cache(model, mnist_test.images[0])  # a single image
    assert torch.allclose(a, b) and torch.allclose(a[:1], c)


def test_names_filter_and_batching(bundled, mnist_test):
    model = bundled("cnn-digits")
    full, _ = run_with_cache(model, mnist_test.images[:100], batch_size=100)
    batched, cache = run_with_cache(model, mnist_test.images[:100], names=["fc1.post"], batch_size=7)
    assert list(cache) == ["fc1.post"] and cache["fc1.post"].shape == (100, 200)
    assert torch.allclose(full, batched, atol=1e-6)


def test_no_hook_remains_after_a_run_that_raised():
    model = build_model(cnn_config(n_classes=2))

    def boom(_):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        with hooks(model, {"conv2.post": boom}):
            model(torch.zeros(1, 28, 28))
    assert _no_hooks_left(model)
    with pytest.raises(ValueError):
        run_with_cache(model, np.zeros((2, 27, 27), np.uint8))  # fails before any hook
    assert _no_hooks_left(model)


def test_hooks_can_replace_activations():
    model = build_model(mlp_config(hidden_sizes=(5,)))
    with hooks(model, {"layers.0.post": lambda out: torch.zeros_like(out)}):
        logits = model(torch.rand(2, 28, 28))
    assert torch.allclose(logits, model.layers[1].bias.expand(2, -1))
    assert _no_hooks_left(model)


def test_unknown_hook_name_is_clear():
    with pytest.raises(KeyError, match="unknown hook names"):
        run_with_cache(build_model(mlp_config()), np.zeros((1, 28, 28), np.uint8), names=["nope"])


@pytest.mark.parametrize("bad", [np.zeros((2, 28, 28), np.int64), np.array(["x"]), np.zeros((28,), np.uint8)])
def test_bad_image_inputs_are_clear(bad):
    with pytest.raises((TypeError, ValueError)):
        to_pixels(bad)


def test_concurrent_threads_on_one_shared_model_never_see_each_others_hooks(bundled, mnist_test):
    """The app shares one model between sessions; each thread's capture and ablation stay its own."""
    import threading

    model = bundled("mlp-2x64")
    images = mnist_test.images[:512]
    expected, _ = run_with_cache(model, images)
    errors, barrier = [], threading.Barrier(4)

    def capture():
        barrier.wait()
        for _ in range(10):
            logits, cache = run_with_cache(model, images, names=["layers.1.post"], batch_size=64)
            if not torch.equal(logits, expected) or cache["layers.1.post"].shape != (512, 64):
                errors.append("capture saw another thread's hooks")

    def ablate():
        barrier.wait()
        for _ in range(10):
            with hooks(model, {"layers.0.post": torch.zeros_like}):
                with torch.no_grad():
                    ablated = model(torch.as_tensor(images[:64], dtype=torch.float32) / 255)
            if not torch.allclose(ablated, ablated[:1].expand_as(ablated)):
                errors.append("ablation was not applied to its own forward pass")

    threads = [threading.Thread(target=f) for f in (capture, capture, ablate, ablate)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    assert _no_hooks_left(model)
