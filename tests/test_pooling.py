"""``max_pool`` is ``F.max_pool2d`` to the bit, forwards and backwards, ties and NaN included."""

import pytest
import torch
import torch.nn.functional as F

from mechmnistic.models import pooling
from mechmnistic.models.pooling import max_pool


@pytest.fixture(autouse=True)
def _always_channels_last(monkeypatch):
    """Small test tensors take the channels-last path too (it is the one under test)."""
    monkeypatch.setattr(pooling, "CHANNELS_LAST_FROM", 0)


def _pair(x: torch.Tensor, k: int, grad: torch.Tensor | None = None):
    """Output and input gradient of ``max_pool`` and of ``F.max_pool2d`` on copies of ``x``."""
    results = []
    for pool in (max_pool, F.max_pool2d):
        leaf = x.detach().clone().requires_grad_(True)
        out = pool(leaf, k)
        upstream = grad if grad is not None else torch.arange(out.numel(), dtype=x.dtype).view_as(out) + 1
        out.backward(upstream)
        results.append((out.detach(), leaf.grad))
    return results


@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("size", [(26, 26), (11, 11), (7, 10)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_matches_max_pool2d_with_ties(k, size, dtype):
    generator = torch.Generator().manual_seed(k * 100 + size[0])
    # few distinct values, so most windows hold ties (as clamped pixels and ReLU zeros make them)
    x = torch.randint(-2, 3, (3, 4, *size), generator=generator).to(dtype)
    (ours, our_grad), (theirs, their_grad) = _pair(x, k)
    assert ours.shape == theirs.shape
    assert torch.equal(ours, theirs)
    assert torch.equal(our_grad, their_grad)


def test_matches_max_pool2d_on_continuous_values_and_non_contiguous_input():
    x = torch.randn(5, 3, 13, 12).to(memory_format=torch.channels_last)
    (ours, our_grad), (theirs, their_grad) = _pair(x, 2, torch.randn(5, 3, 6, 6))
    assert torch.equal(ours, theirs) and torch.equal(our_grad, their_grad)


def test_nan_propagates_and_takes_the_gradient_like_max_pool2d():
    x = torch.tensor([[[[1.0, float("nan")], [float("nan"), 5.0]]]])
    (ours, our_grad), (theirs, their_grad) = _pair(x, 2)
    assert ours.isnan().all() and theirs.isnan().all()
    assert torch.equal(our_grad, their_grad)
    assert our_grad.flatten().tolist() == [0.0, 0.0, 1.0, 0.0]  # max_pool2d's last NaN takes the gradient


def test_the_first_maximum_in_the_window_takes_the_gradient():
    x = torch.tensor([[[[0.0, 3.0], [3.0, 3.0]]]])
    (_, our_grad), _ = _pair(x, 2)
    assert our_grad.flatten().tolist() == [0.0, 1.0, 0.0, 0.0]


def test_pool_size_one_is_a_copy():
    x = torch.randn(2, 1, 4, 4)
    out = max_pool(x, 1)
    assert torch.equal(out, x) and out.data_ptr() != x.data_ptr()


def test_bundled_cnn_input_gradients_are_unchanged_by_the_faster_pooling(monkeypatch):
    """Feature visualisation's path: a batch big enough for channels-last, with gradients."""
    from mechmnistic import load_model
    from mechmnistic.models import architectures

    monkeypatch.undo()  # the real threshold: this batch must pass it on its own
    model = load_model("challenge-cnn")
    images = torch.rand(64, 28, 28)
    assert 64 * 8 * 26 * 26 >= pooling.CHANNELS_LAST_FROM

    def logits_and_input_gradient():
        leaf = images.clone().requires_grad_(True)
        logits = model(leaf)
        logits[:, 1].sum().backward()
        return logits.detach(), leaf.grad

    ours = logits_and_input_gradient()
    monkeypatch.setattr(architectures, "max_pool", F.max_pool2d)
    stock = logits_and_input_gradient()
    assert torch.equal(ours[0], stock[0]) and torch.equal(ours[1], stock[1])
